#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Makes the images bench/compress-bench.sh migrates: real data, not invented.
#   bench/compress-images.sh DIR [SIZE_MB]
#   DIR/ext4.img    an ext4 filesystem (mkfs.ext4 -d) filled to ~85% with real
#                   files copied from /usr/lib and /usr/share (libraries,
#                   Python sources, docs, locale data)
#   DIR/core.img    the core dump (gcore) of a Python process that read and
#                   parsed real text and source files: a heap of strings,
#                   dicts and code objects, plus its mapped libraries
#   DIR/random.img  SIZE_MB of /dev/urandom: the worst case, nothing shrinks
# SIZE_MB (default 256) is the size of the ext4 and random images; the core
# is whatever the process holds (about SIZE_MB).
set -euo pipefail
dir=${1:?usage: compress-images.sh DIR [SIZE_MB]}
size_mb=${2:-256}
for tool in mkfs.ext4 gcore python3; do
  command -v $tool >/dev/null || { echo "compress-images: $tool is missing" >&2; exit 1; }
done
mkdir -p "$dir"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# ext4: files in path order from /usr/lib and /usr/share, half the budget each
budget=$((size_mb * 1024 * 1024 * 85 / 100 / 2))
for src in /usr/lib /usr/share; do
  find "$src" -xdev -type f -size -16M -printf '%s %p\n' 2>/dev/null | sort -k2 >"$stage/all"
  awk -v b=$budget '{ t += $1; if (t > b) exit; print $2 }' "$stage/all" >"$stage/list"
  tar -cf - -T "$stage/list" 2>/dev/null | tar -xf - -C "$stage" 2>/dev/null || true
done
rm -f "$stage/list" "$stage/all" "$dir/ext4.img"
mkfs.ext4 -q -F -d "$stage" "$dir/ext4.img" "${size_mb}M"

# core: a Python process whose heap holds real parsed text and code
python3 - "$((size_mb * 1024 * 1024))" "$stage/ready" <<'PY' &
import os, sys, gzip, glob, time
want, ready = int(sys.argv[1]), sys.argv[2]
keep, words = [], {}
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
paths = sorted(glob.glob("/usr/lib/python3*/**/*.py", recursive=True)) + \
        sorted(glob.glob("/usr/share/man/**/*.gz", recursive=True)) + \
        sorted(glob.glob("/usr/share/doc/**/*", recursive=True))
for p in paths:
    if rss() > want:
        break
    try:
        data = gzip.open(p).read() if p.endswith(".gz") else open(p, "rb").read()
        text = data.decode("utf-8", "replace")
    except Exception:
        continue
    keep.append(text)
    for w in text.split():
        words[w] = words.get(w, 0) + 1
    if p.endswith(".py"):
        try:
            keep.append(compile(text, p, "exec"))
        except Exception:
            pass
open(ready, "w").close()
time.sleep(600)
PY
py=$!
for _ in $(seq 1200); do [ -e "$stage/ready" ] && break; sleep 0.5; done
gcore -o "$stage/core" $py >/dev/null 2>&1
kill $py; wait $py 2>/dev/null || true
mv "$stage/core.$py" "$dir/core.img"

head -c $((size_mb << 20)) /dev/urandom >"$dir/random.img"
ls -l "$dir"
