#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Turns the JSON lines of bench/run.sh into the markdown report: one table
# per measurement, then the targets of docs/benchmarks.md, met or missed.
#   bench/report.sh bench/results/latest.jsonl > bench/results/latest.md
set -euo pipefail
json=${1:-bench/results/latest.jsonl}
command -v jq >/dev/null || { echo "report: jq is missing (scripts/install-deps.sh)" >&2; exit 1; }
q() { jq -rs "$1" "$json"; }

# m(x): "median (min-max)" of a {median,min,max} object
defs='def r(x): (x * 100 | round) / 100;
      def m(x): if (x | type) == "object" then "\(r(x.median)) (\(r(x.min))-\(r(x.max)))" else "\(x)" end;
      def med(x): if (x | type) == "object" then x.median else x end;'

q "$defs"'
  (map(select(.bench == "machine"))[0]) as $m |
  (map(select(.bench == "run"))[0]) as $run |
  "# godwit benchmark run (\(if $m.quick then "quick" else "full" end), \($m.cores) cores, kernel \($m.kernel))\n",
  "Took \($run.seconds) s; host CPU steal during the run: \($run.host_steal_ticks) ticks; page reporting held: \($m.page_reporting_held).",
  (if $m.loadavg_start then "Load average (1, 5, 15 min) at the start: \($m.loadavg_start | map(tostring) | join(", ")); at the end: \($run.loadavg_end | map(tostring) | join(", ")) (the machine is shared: compare ratios within the run)." else empty end),
  "Figures are medians (min-max) over the runs of each cell.\n",
  "## 0. godwit against its peers (same run, taking turns run by run)\n",
  "Time to a complete destination (godwit: leecher start to COMPLETE, driven by godwit-ctl switchover; every",
  "destination compared with its source). CPU: all of the tool'"'"'s processes (seeder + leecher;",
  "qemu-img or nbdcopy + nbdkit; both QEMUs during the migration). QEMU'"'"'s destination RAM is on tmpfs,",
  "so its allocation is memory, not comparable.\n",
  ([.[] | select(.bench == "peers")] | group_by(.workload) | sort_by(
     {"dense": 0, "sparse": 1, "writer": 2, "slowlink": 3}[.[0].workload]) | .[] |
   . as $rows | ($rows | map(select(.tool == "godwit" and .seconds))[0]) as $g |
   "### \($rows[0].workload), \($rows[0].size_mb) MiB\(if $rows[0].workload == "sparse" then " (10% data in 1 MiB extents)" elif $rows[0].workload == "writer" then " (godwit-writer at \($g.writer_mbps // "?") MB/s during pre-copy; QEMU'"'"'s guest dirties \(($rows | map(select(.hot_mib))[0].hot_mib) // "?") MiB)" elif $rows[0].workload == "slowlink" then " over godwit-linkem at \($g.link_mbps // "?") MB/s (shared line), Finalize after \($g.finalize_after_s // "?") s with 2 blocks written" else " random, page-cached" end)\n",
   "| tool | time | MB/s | CPU s/GiB | destination allocation (x source) | downtime | Finalize call |",
   "|---|---|---|---|---|---|---|",
   ($rows[] | if .skipped then "| \(.tool) | skipped: \(.skipped) | | | | | |" else
     "| \({"godwit": "godwit", "qemu-img": "qemu-img convert from nbdkit file", "nbdcopy": "nbdcopy from nbdkit file", "copy-floor": "copy floor (4 streams)", "qemu": "QEMU live migration (unthrottled)", "qemu-default-bandwidth": "QEMU live migration (default 128 MiB/s)"}[.tool] // .tool) | \(m(.seconds)) s | \(m(.mb_per_s)) | \(med(.cpu_s_per_gib)) | \(med(.dest_alloc_kib) / 1024 | floor) MiB (\(r(med(.dest_alloc_kib) / .source_alloc_kib)))\(if .tool == "qemu" or .tool == "qemu-default-bandwidth" then ", tmpfs" else "" end) | \(if .downtime_ms then "\(m(.downtime_ms)) ms" else "" end) | \(if .finalize_call_ms then "\(m(.finalize_call_ms)) ms" else "" end) |" end),
   "",
   ([$rows[] | select(.seconds and .tool != "godwit")] | map("\(.tool) \(if $g then r(med($g.seconds) / med(.seconds)) else "-" end)") |
     if length > 0 and $g then "godwit time / peer time: " + join(", ") + "\n" else empty end)),
  "## Baselines (same run)\n",
  "| baseline | MB/s |", "|---|---|",
  (.[] | select(.bench == "tcp") | "| loopback TCP, \(.streams) stream(s) | \(.mb_per_s) |"),
  (.[] | select(.bench == "page_cache_read") | "| page-cache read of the image | \(m(.mb_per_s)) |"),
  (.[] | select(.bench == "baseline" and .baseline == "copy floor") |
     "| copy floor (pread, send, recv, pwrite; \(.streams) stream(s), \(.size_mb) MiB) | \(m(.mb_per_s)) |"),
  "",
  "## 1. Pull throughput (full pre-copy of an idle image, 0 ms RTT)\n",
  "| workers x channels | image | MB/s | / one TCP stream | / copy floor | leecher peak RSS | CPU s/GiB seeder / leecher |",
  "|---|---|---|---|---|---|---|",
  (.[] | select(.bench == "pull") |
     "| \(.workers) x \(.channels) | \(.size_mb) MiB | \(m(.mb_per_s)) | \(.ratio_to_tcp) | \(.ratio_to_copy_floor) | \(.leecher_peak_rss_kb / 1024 | floor) MiB | \(med(.seeder_cpu_s_per_gib)) / \(med(.leecher_cpu_s_per_gib)) |"),
  "",
  "## 2. Throughput by RTT (emulated by godwit-linkem)\n",
  "| RTT | workers x channels | image | MB/s | / same configuration at 0 ms |", "|---|---|---|---|---|",
  ([.[] | select(.bench == "pull_rtt")] as $all | $all[] | . as $p |
     ($all | map(select(.rtt_ms == 0 and .workers == $p.workers and .channels == $p.channels))[0]) as $zero |
     "| \(.rtt_ms) ms | \(.workers) x \(.channels) | \(.size_mb) MiB | \(m(.mb_per_s)) | \(if $zero then r(med(.mb_per_s) / med($zero.mb_per_s)) else "" end) |"),
  "",
  "## 3. First-chunk latency after Finalize (reads through the leecher export)\n",
  "| RTT (link ping, measured) | remote chunk p50 / p99 | local chunk p50 / p99 |", "|---|---|---|",
  (.[] | select(.bench == "first_chunk") |
     "| \(.rtt_ms) ms (\(if .link_rtt_us then "\(.link_rtt_us / 1000) ms" else "-" end)) | \(.first_read_us.p50 / 1000) / \(.first_read_us.p99 / 1000) ms | \(.local_read_us.p50) / \(.local_read_us.p99) µs |"),
  "",
  "## 4. Downtime (Finalize to export ready; 16 x 4; the freeze carries the whole dirty set)\n",
  "| image | dirty | downtime | dirty chunks at the freeze |", "|---|---|---|---|",
  (.[] | select(.bench == "downtime") |
     "| \(.size_mb) MiB | \(.dirty_pct)% | \(m(.downtime_us | map_values(. / 1000))) ms | \(med(.dirty_chunks)) |"),
  "",
  "## 5. NBD serving (nbdcopy, same image, same run)\n",
  "| op | godwit-seeder | godwit-leecher | nbdkit file | qemu-nbd | seeder / nbdkit | leecher / nbdkit |",
  "|---|---|---|---|---|---|---|",
  (.[] | select(.bench == "nbd_serve") |
     "| \(.op) | \(m(.godwit_seeder)) | \(m(.godwit_leecher)) | \(m(.nbdkit_file)) | \(m(.qemu_nbd)) | \(.seeder_vs_nbdkit) | \(.leecher_vs_nbdkit) |"),
  "",
  "## 6. Chunk size\n",
  "| chunk | pull MB/s (16 x 4) | first-chunk p50 / p99 | 4 KiB write dirties |", "|---|---|---|---|",
  ([.[] | select(.bench == "chunk_latency")] as $lat | .[] | select(.bench == "chunk_pull") | . as $p |
     ($lat | map(select(.chunk_size == $p.chunk_size))[0]) as $l |
     "| \(.chunk_size / 1024) KiB | \(m(.mb_per_s)) | \($l.first_read_us.p50 / 1000) / \($l.first_read_us.p99 / 1000) ms | \(.chunk_size / 4096)x its size |"),
  "",
  "## 7. mTLS against plaintext (same cells, taking turns run by run)\n",
  "| workers x channels | image | plaintext MB/s | mTLS MB/s | mTLS / plaintext | CPU s/GiB seeder + leecher, plaintext / mTLS |",
  "|---|---|---|---|---|---|",
  ([.[] | select(.bench == "tls")] as $all | $all[] | select(.tls) | . as $t |
     ($all | map(select(.tls | not) | select(.workers == $t.workers and .channels == $t.channels and .size_mb == $t.size_mb))[0]) as $p |
     "| \(.workers) x \(.channels) | \(.size_mb) MiB | \(m($p.mb_per_s)) | \(m(.mb_per_s)) | \(.ratio_to_plaintext) | \(r(med($p.seeder_cpu_s_per_gib) + med($p.leecher_cpu_s_per_gib))) / \(r(med(.seeder_cpu_s_per_gib) + med(.leecher_cpu_s_per_gib))) |"),
  ""'

# The targets of the issue, each with the figure it is judged on.
q "$defs"'
  def verdict(ok): if ok then "met" else "**missed**" end;
  (map(select(.bench == "tcp" and .streams == 1))[0].mb_per_s) as $tcp |
  (map(select(.bench == "pull" and .workers == 16 and .channels == 4))[0]) as $pull |
  (if any(.[]; .bench == "pull_rtt" and .workers == "auto") then "auto" else 16 end) as $dw |
  (map(select(.bench == "pull_rtt" and .workers == $dw and .channels == 4 and .rtt_ms == 0))[0]) as $r0 |
  (map(select(.bench == "pull_rtt" and .workers == $dw and .channels == 4 and .rtt_ms == 50))[0]) as $r50 |
  (map(select(.bench == "first_chunk"))) as $fc |
  (map(select(.bench == "downtime" and .dirty_pct == 1)) | sort_by(.size_mb)) as $dt |
  (map(select(.bench == "nbd_serve"))) as $nbd |
  def peer(w; t): map(select(.bench == "peers" and .workload == w and .tool == t and .seconds))[0];
  peer("dense"; "godwit") as $dg | peer("dense"; "qemu-img") as $dq | peer("dense"; "copy-floor") as $dc |
  peer("sparse"; "godwit") as $sg | peer("sparse"; "qemu-img") as $sq | peer("slowlink"; "godwit") as $lg |
  "## Targets\n",
  "| target | figure | verdict |", "|---|---|---|",
  (if $dg and $dq then "| dense \($dg.size_mb) MiB: godwit time <= 0.8 x qemu-img convert | \(med($dg.seconds)) / \(med($dq.seconds)) s = \(r(med($dg.seconds) / med($dq.seconds))) | \(verdict(med($dg.seconds) <= 0.8 * med($dq.seconds))) |" else empty end),
  (if $dg and $dc then "| dense \($dg.size_mb) MiB: godwit throughput >= 0.8 x the copy floor | \(med($dg.mb_per_s)) / \(med($dc.mb_per_s)) MB/s = \(r(med($dg.mb_per_s) / med($dc.mb_per_s))) | \(verdict(med($dg.mb_per_s) >= 0.8 * med($dc.mb_per_s))) |" else empty end),
  (if $sg and $sq then "| sparse \($sg.size_mb) MiB: godwit time <= 1.0 x qemu-img convert | \(med($sg.seconds)) / \(med($sq.seconds)) s = \(r(med($sg.seconds) / med($sq.seconds))) | \(verdict(med($sg.seconds) <= med($sq.seconds))) |" else empty end),
  (if $sg then "| sparse: destination allocation <= 1.1 x the source'"'"'s | \(med($sg.dest_alloc_kib) / 1024 | floor) / \($sg.source_alloc_kib / 1024 | floor) MiB = \(r(med($sg.dest_alloc_kib) / $sg.source_alloc_kib)) | \(verdict(med($sg.dest_alloc_kib) <= 1.1 * $sg.source_alloc_kib)) |" else empty end),
  (if $dg and $dq then "| CPU s/GiB, seeder + leecher <= qemu-img + nbdkit (dense) | \(med($dg.cpu_s_per_gib)) vs \(med($dq.cpu_s_per_gib)) | \(verdict(med($dg.cpu_s_per_gib) <= med($dq.cpu_s_per_gib))) |" else empty end),
  (if $lg then "| slow link (\($lg.link_mbps) MB/s, \(med($lg.dirty_chunks)) dirty chunks): downtime <= 20 ms | \(med($lg.downtime_ms)) ms | \(verdict(med($lg.downtime_ms) <= 20)) |" else empty end),
  (if $lg then "| slow link: the Finalize call <= 1 s | \(med($lg.finalize_call_ms)) ms | \(verdict(med($lg.finalize_call_ms) <= 1000)) |" else empty end),
  (map(select(.bench == "rss"))[0] | if . then "| leecher peak RSS, \(.size_mb) MiB image, default workers <= 64 MiB | \(.leecher_peak_rss_kb / 1024 | floor) MiB | \(verdict(.leecher_peak_rss_kb <= 65536)) |" else empty end),
  (if $pull then "| pull at 0 ms >= 0.7 x one TCP stream | 16 x 4: \(med($pull.mb_per_s)) / \($tcp) MB/s = \($pull.ratio_to_tcp) (copy floor: \($pull.ratio_to_copy_floor)) | \(verdict($pull.ratio_to_tcp >= 0.7)) |" else empty end),
  (if $r0 and $r50 then "| 50 ms >= 0.5 x 0 ms, default configuration (\($dw) x 4) | \(med($r50.mb_per_s)) / \(med($r0.mb_per_s)) MB/s = \(r(med($r50.mb_per_s) / med($r0.mb_per_s))) | \(verdict(med($r50.mb_per_s) >= 0.5 * med($r0.mb_per_s))) |" else empty end),
  ($fc[] | if .rtt_ms == 0 then
     "| first chunk p50 <= 0.5 ms at 0 ms | \(.first_read_us.p50 / 1000) ms | \(verdict(.first_read_us.p50 <= 500)) |"
   else
     ((.link_rtt_us // (.rtt_ms * 1000))) as $link |
     "| first chunk p50 < RTT + 2 ms at \(.rtt_ms) ms (the link itself: \($link / 1000) ms) | \(.first_read_us.p50 / 1000) ms | \(verdict(.first_read_us.p50 < $link + 2000)) |"
   end),
  ($dt | map(select(.size_mb == 1024))[0] | if . then "| downtime 1 GiB, 1% dirty < 20 ms | \(med(.downtime_us) / 1000) ms | \(verdict(med(.downtime_us) < 20000)) |" else empty end),
  (map(select(.bench == "downtime" and .dirty_pct == 0)) | sort_by(.size_mb) |
     if length >= 2 then "| downtime flat in image size: largest <= 1.5 x smallest (0% dirty, the fixed cost) | \(.[-1].size_mb) vs \(.[0].size_mb) MiB: \(r(med(.[-1].downtime_us) / med(.[0].downtime_us))) | \(verdict(med(.[-1].downtime_us) <= 1.5 * med(.[0].downtime_us))) |" else empty end),
  ($nbd[] | "| NBD \(.op) >= 0.9 x nbdkit file | seeder \(.seeder_vs_nbdkit), leecher \(.leecher_vs_nbdkit) | \(verdict(.seeder_vs_nbdkit >= 0.9 and .leecher_vs_nbdkit >= 0.9)) |"),
  (map(select(.bench == "tls" and .tls and .workers == 16 and .channels == 4))[0] |
     if . then "| mTLS pull >= 0.75 x plaintext (16 x 4, \(.size_mb) MiB, interleaved) | \(.ratio_to_plaintext) | \(verdict(.ratio_to_plaintext >= 0.75)) |" else empty end),
  (map(select(.bench == "pull" or .bench == "downtime") | select(.size_mb >= 4096)) | max_by(.leecher_peak_rss_kb) |
     if . then "| leecher peak RSS, 4 GiB image < 128 MiB | \(.leecher_peak_rss_kb / 1024 | floor) MiB (\(.workers) x \(.channels)) | \(verdict(.leecher_peak_rss_kb < 131072)) |" else empty end),
  "",
  "r3map (published, not measured here): gRPC transport 395-500 MB/s at 0 ms RTT, about 50 MB/s at 28-40 ms.",
  "",
  (map(select(.bench == "section")) | if length > 0 then
     "## Time per section\n", "| section | seconds |", "|---|---|", (.[] | "| \(.name) | \(.seconds) |") else empty end)'
