#!/usr/bin/env python3
"""Writes seed inputs for the `protocol_decode` fuzz target into fuzz/corpus/protocol_decode/:
valid frames of every type (see runtime/src/protocol.rs), a few concatenations and classic
malformed cases. The first byte of each input is the read-split selector, not frame data."""
import hashlib, os, struct, sys

def frame(ty, body):
    return struct.pack("<I", 1 + len(body)) + bytes([ty]) + body

def wire_header(shape=(1, 4, 2, 2), axis=1, channels=4):
    h = b"CLQW" + bytes([1, 1, 2, len(shape), axis, 0, 0, 0])
    h += b"".join(struct.pack("<I", d) for d in shape) + struct.pack("<I", channels)
    return h + struct.pack("<fi", 0.05, -3)

begin = frame(0x01, struct.pack("<III", 1, 3, 90000) + wire_header())
chans = frame(0x02, struct.pack("<III", 1, 0, 2) + bytes(range(8)))
done = frame(0x03, struct.pack("<I", 1))
result = frame(0x81, struct.pack("<IIIIiBIII", 1, 3, 4, 4, 2, 0, 120, 2500, 3) + struct.pack("<fff", 0.1, -2.0, 3.5))
error = frame(0x82, struct.pack("<IH", 1, 5) + b"channels 4.. expected, got 2..")
seeds = [
    begin, chans, done, result, error,
    begin + chans + chans + done,
    struct.pack("<I", 0),                      # zero length
    struct.pack("<I", 1 << 30) + b"\x01",      # huge length
    frame(0x7f, b"abc"),                       # unknown type
    frame(0x03, b"\x01\x02"),                  # short body
    frame(0x02, struct.pack("<III", 1, 0, 3) + bytes(4)),  # payload not whole channels
    begin[: len(begin) // 2],                  # truncated
]
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "protocol_decode")
os.makedirs(out, exist_ok=True)
for i, s in enumerate(seeds):
    data = bytes([i * 5 % 256]) + s
    with open(os.path.join(out, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to {out}", file=sys.stderr)
