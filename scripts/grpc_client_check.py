#!/usr/bin/env python3
"""Independent check of artnet's KServe v2 gRPC service (issue 19).

Compiles KServe's published grpc_predict_v2.proto with Debian's python3-grpc-tools (not
artnet's generated Go code), then talks to a running `artnet serve --grpc-addr ...` over TLS
with a bearer token, as any Open Inference Protocol client would:

  ServerLive / ServerReady / ModelReady / ServerMetadata / ModelMetadata / ModelInfer (raw
  and typed FP32 contents), ModelInfer equal to the REST v2 answer for the same tensor
  (<= 1e-5); without the token ModelInfer is UNAUTHENTICATED while ServerLive answers; HTTP
  without the token is 401 while /v2/health/live answers 200.

Usage: grpc_client_check.py --grpc HOST:PORT --http https://HOST:PORT --ca CA.pem --token-file F
           --proto server/kservepb/grpc_predict_v2.proto
Needs: apt-get install python3-grpcio python3-grpc-tools python3-numpy
Prints one JSON line with what it saw; exits 1 on the first failed check.
"""
import argparse
import importlib
import json
import os
import ssl
import struct
import sys
import tempfile
import urllib.error
import urllib.request

import grpc
from grpc_tools import protoc


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def compile_proto(proto):
    out = tempfile.mkdtemp(prefix="artnet-pb-")
    d, name = os.path.split(os.path.abspath(proto))
    rc = protoc.main(["grpc_tools.protoc", "-I" + d, "--python_out=" + out, "--grpc_python_out=" + out, os.path.join(d, name)])
    if rc != 0:
        fail("protoc on %s exited %d" % (proto, rc))
    sys.path.insert(0, out)
    base = name[:-len(".proto")]
    return importlib.import_module(base + "_pb2"), importlib.import_module(base + "_pb2_grpc")


def http(url, ctx, token=None, body=None):
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--grpc", required=True)
    ap.add_argument("--http", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--proto", required=True)
    a = ap.parse_args()
    token = [l.strip() for l in open(a.token_file) if l.strip() and not l.startswith("#")][0]
    pb, pbg = compile_proto(a.proto)
    ca = open(a.ca, "rb").read()
    ch = grpc.secure_channel(a.grpc, grpc.ssl_channel_credentials(root_certificates=ca),
                             options=[("grpc.ssl_target_name_override", "localhost"),
                                      ("grpc.max_receive_message_length", 64 << 20)])
    stub = pbg.GRPCInferenceServiceStub(ch)
    auth = [("authorization", "Bearer " + token)]
    seen = {}

    # Probes without a token.
    seen["live"] = stub.ServerLive(pb.ServerLiveRequest(), timeout=30).live
    seen["ready"] = stub.ServerReady(pb.ServerReadyRequest(), timeout=30).ready
    if not (seen["live"] and seen["ready"]):
        fail("ServerLive/ServerReady: %s" % seen)
    seen["model_ready"] = stub.ModelReady(pb.ModelReadyRequest(name="artnet"), metadata=auth, timeout=30).ready
    sm = stub.ServerMetadata(pb.ServerMetadataRequest(), metadata=auth, timeout=30)
    md = stub.ModelMetadata(pb.ModelMetadataRequest(name="artnet"), metadata=auth, timeout=30)
    seen["server"] = sm.name
    seen["versions"] = list(md.versions)
    seen["inputs"] = ["%s %s %s" % (t.name, t.datatype, list(t.shape)) for t in md.inputs]
    img = [t for t in md.inputs if t.name == "image"]
    if not seen["model_ready"] or sm.name != "artnet" or not img or not md.versions:
        fail("metadata: %s" % seen)
    side = img[0].shape[2]
    n = 2
    count = n * 3 * side * side
    data = [((i * 37) % 101) / 50.0 - 1.0 for i in range(count)]

    # REST v2 answer for the same tensor.
    ctx = ssl.create_default_context(cadata=ca.decode())
    ctx.check_hostname = False  # the certificate names localhost; the URL may say 127.0.0.1
    body = json.dumps({"inputs": [{"name": "image", "shape": [n, 3, side, side], "datatype": "FP32", "data": data}]}).encode()
    code, rb = http(a.http + "/v2/models/artnet/infer", ctx, token, body)
    if code != 200:
        fail("REST infer: %d %s" % (code, rb[:200]))
    rest = {o["name"]: o["data"] for o in json.loads(rb)["outputs"]}

    def infer(raw):
        t = pb.ModelInferRequest.InferInputTensor(name="image", datatype="FP32", shape=[n, 3, side, side])
        req = pb.ModelInferRequest(model_name="artnet", id="py-1")
        if raw:
            req.raw_input_contents.append(struct.pack("<%df" % count, *data))
        else:
            t.contents.fp32_contents.extend(data)
        req.inputs.append(t)
        return stub.ModelInfer(req, metadata=auth, timeout=60)

    worst = 0.0
    for raw in (True, False):
        r = infer(raw)
        if r.id != "py-1" or r.model_name != "artnet" or not r.model_version:
            fail("ModelInfer raw=%s: id %r model %r version %r" % (raw, r.id, r.model_name, r.model_version))
        for i, o in enumerate(r.outputs):
            if raw:
                b = r.raw_output_contents[i]
                vals = struct.unpack("<%df" % (len(b) // 4), b)
            else:
                vals = list(o.contents.fp32_contents)
            want = rest[o.name]
            if len(vals) != len(want):
                fail("output %s: %d values, REST %d" % (o.name, len(vals), len(want)))
            worst = max(worst, max(abs(x - y) for x, y in zip(vals, want)))
        seen["model_version"] = r.model_version
    seen["max_abs_diff_vs_rest"] = worst
    if worst > 1e-5:
        fail("ModelInfer differs from REST by %g" % worst)

    # Without a token.
    try:
        infer_req = pb.ModelInferRequest(model_name="artnet")
        stub.ModelInfer(infer_req, timeout=30)
        fail("ModelInfer without a token succeeded")
    except grpc.RpcError as e:
        seen["no_token_grpc"] = e.code().name
        if e.code() != grpc.StatusCode.UNAUTHENTICATED:
            fail("ModelInfer without a token: %s, want UNAUTHENTICATED" % e.code())
    code, _ = http(a.http + "/v2/models/artnet", ctx)
    seen["no_token_http"] = code
    live, _ = http(a.http + "/v2/health/live", ctx)
    seen["no_token_live"] = live
    if code != 401 or live != 200:
        fail("HTTP without a token: metadata %d (want 401), live %d (want 200)" % (code, live))
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
