#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# TLS and mTLS: a throwaway CA, server and client certificates made with the
# openssl CLI; a migration over mTLS ends byte-exact; a plaintext client, a
# leecher with a CA but no certificate (a flag error) and a client with
# another CA's certificate are refused, and the seeder keeps serving.
source "$(dirname "$0")/functions.sh"
requires openssl
CTL=$GODWIT_BIN/ctl/godwit-ctl
cd "$TEST_DIR"

make_ca() { # make_ca NAME
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$1" \
    -keyout "$1.key" -out "$1.crt" 2>/dev/null
}
make_cert() { # make_cert NAME CA
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}
make_ca ca
make_ca otherca
make_cert server ca
make_cert client ca
make_cert intruder otherca

head -c $((16 << 20)) /dev/urandom >source.img

# Every TLS file is read and checked at start: exit 2 and one sentence,
# never a plaintext fallback or a handshake that fails later.
expect_exit 2 "$SEEDER" --image source.img --tls-cert server.crt --tls-key client.key
one_sentence "--tls-key client.key is not the key of --tls-cert server.crt"
echo "not a certificate" >garbage.pem
expect_exit 2 "$SEEDER" --image source.img --tls-cert server.crt --tls-key server.key \
  --tls-ca garbage.pem
one_sentence "--tls-ca garbage.pem holds no PEM certificate"
expect_exit 2 "$LEECHER" --seeder 127.0.0.1:1 --image x.img --tls-cert client.crt \
  --tls-key client.key --tls-ca garbage.pem
one_sentence "--tls-ca garbage.pem holds no PEM certificate"
expect_exit 2 "$CTL" --control 127.0.0.1:1 --tls-ca garbage.pem status
one_sentence "--tls-ca garbage.pem holds no PEM certificate"
"$SEEDER" --image source.img --listen 127.0.0.1:0 --nbd-socket s.sock --log-format json \
  --tls-cert server.crt --tls-key server.key --tls-ca ca.crt >seeder.events 2>seeder.log &
cleanup_pids+=($!)
sport=$(ready_field seeder.events $! port) || fail "seeder did not start: $(cat seeder.log)"

# leecher_try NAME FLAGS...: starts a leecher with FLAGS; it must fail to start.
refused() {
  local name=$1 status=0
  shift
  timeout 30 "$LEECHER" --seeder "127.0.0.1:$sport" --image "$name.img" --control 127.0.0.1:0 \
    "$@" >"$name.out" 2>&1 || status=$?
  [ "$status" -eq 1 ] || fail "$name: leecher exited $status, expected 1: $(cat "$name.out")"
  grep -q "cannot reach the seeder" "$name.out" || fail "$name: no clear sentence: $(cat "$name.out")"
}
refused plaintext
# A CA alone is a flag error (no certificate for mTLS or the control port).
expect_exit 2 "$LEECHER" --seeder "127.0.0.1:$sport" --image ca-only.img --tls-ca ca.crt
one_sentence "--tls-ca needs --tls-cert and --tls-key"
refused other-ca --tls-ca ca.crt --tls-cert intruder.crt --tls-key intruder.key

"$LEECHER" --seeder "127.0.0.1:$sport" --image dest.img --nbd-socket d.sock --log-format json \
  --control 127.0.0.1:0 --tls-ca ca.crt --tls-cert client.crt --tls-key client.key \
  >leecher.events 2>leecher.log &
leecher=$!
cleanup_pids+=($leecher)
cport=$(ready_field leecher.events $leecher control_port 20) ||
  fail "mTLS leecher did not start: $(cat leecher.log)"
ctl=("$CTL" --control "127.0.0.1:$cport" --tls-ca ca.crt --tls-cert client.crt --tls-key client.key)
if "$CTL" --control "127.0.0.1:$cport" --timeout 2 status >/dev/null 2>&1; then
  fail "the control port answered a plaintext client"
fi
"${ctl[@]}" --timeout 60 wait-local >/dev/null || fail "pre-copy over mTLS"
"${ctl[@]}" finalize >/dev/null || fail "Finalize over mTLS"
"${ctl[@]}" --timeout 60 wait-complete >/dev/null || fail "COMPLETE over mTLS"
kill -TERM "$leecher"
wait "$leecher" || fail "leecher exit status"
cmp source.img dest.img || fail "the image differs after a migration over mTLS"
kill -0 "${cleanup_pids[0]}" || fail "the seeder died"
echo "test-tls: ok"
