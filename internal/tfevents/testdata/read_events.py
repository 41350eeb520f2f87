#!/usr/bin/python3
"""An independent reader of TensorBoard event files, for artnet's tests.

Standard library only: its own CRC-32C (bitwise, reflected polynomial 0x82F63B78) and its own
protobuf wire-format parser for the fields of tensorflow.Event / Summary / Summary.Value /
SessionLog that scalar logging uses. It reads each file named on the command line, checks both
masked CRCs of every record, and prints one JSON object per event on stdout:
{"wall_time": ..., "step": ..., "file_version": ..., "scalars": {tag: value}, "session_start": bool}.
A bad record exits 1 with a one-line message naming the file and the byte offset.
"""
import json
import struct
import sys


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def fields(buf):
    """Yields (field number, wire type, value) of a serialized message."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 1:
            v = buf[i:i + 8]
            i += 8
        elif wt == 2:
            n, i = varint(buf, i)
            v = buf[i:i + n]
            i += n
        elif wt == 5:
            v = buf[i:i + 4]
            i += 4
        else:
            raise ValueError("wire type %d" % wt)
        if i > len(buf):
            raise ValueError("field %d runs past the message" % num)
        yield num, wt, v


def parse_event(buf):
    ev = {"wall_time": None, "step": 0, "file_version": None, "scalars": {}, "session_start": False}
    for num, wt, v in fields(buf):
        if num == 1 and wt == 1:
            ev["wall_time"] = struct.unpack("<d", v)[0]
        elif num == 2 and wt == 0:
            ev["step"] = v - (1 << 64) if v >= 1 << 63 else v
        elif num == 3 and wt == 2:
            ev["file_version"] = v.decode("utf-8")
        elif num == 5 and wt == 2:  # Summary
            for snum, swt, sv in fields(v):
                if snum != 1 or swt != 2:
                    continue
                tag, val = None, None
                for vnum, vwt, vv in fields(sv):  # Summary.Value
                    if vnum == 1 and vwt == 2:
                        tag = vv.decode("utf-8")
                    elif vnum == 2 and vwt == 5:
                        val = struct.unpack("<f", vv)[0]
                ev["scalars"][tag] = val
        elif num == 6 and wt == 2:  # SessionLog
            for lnum, lwt, lv in fields(v):
                if lnum == 1 and lwt == 0 and lv == 1:
                    ev["session_start"] = True
    return ev


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    i = 0
    while i < len(data):
        if len(data) - i < 12:
            raise ValueError("%s: offset %d: truncated record header" % (path, i))
        head = data[i:i + 8]
        (n,) = struct.unpack("<Q", head)
        (hc,) = struct.unpack("<I", data[i + 8:i + 12])
        if hc != masked(head):
            raise ValueError("%s: offset %d: length CRC mismatch" % (path, i))
        body = data[i + 12:i + 12 + n]
        if len(body) != n or len(data) < i + 16 + n:
            raise ValueError("%s: offset %d: truncated record" % (path, i))
        (dc,) = struct.unpack("<I", data[i + 12 + n:i + 16 + n])
        if dc != masked(body):
            raise ValueError("%s: offset %d: data CRC mismatch" % (path, i))
        yield parse_event(body)
        i += 16 + n


def main():
    try:
        for path in sys.argv[1:]:
            for ev in read(path):
                print(json.dumps(ev, allow_nan=True))
    except (ValueError, IndexError, UnicodeDecodeError) as e:
        print("read_events: %s" % e, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
