#!/usr/bin/env bash
# Regenerates the Go code of KServe's Open Inference Protocol (v2) gRPC service from
# grpc_predict_v2.proto (kserve/kserve docs/predict-api/v2/grpc_predict_v2.proto at commit
# f79adf9d37f73f89703d946e176c1ab4a5c62af4, Apache-2.0, unchanged; see LICENSE-NOTE.md).
#   apt-get install protobuf-compiler                                      # protoc 3.21
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
#   go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
# The proto declares no go_package: the M options map it to this package.
set -euo pipefail
cd "$(dirname "$0")"
PATH="$(go env GOPATH)/bin:$PATH" protoc -I . \
  --go_out=. --go_opt=paths=source_relative \
  --go_opt=Mgrpc_predict_v2.proto=github.com/artnet/artnet/server/kservepb \
  --go-grpc_out=. --go-grpc_opt=paths=source_relative \
  --go-grpc_opt=Mgrpc_predict_v2.proto=github.com/artnet/artnet/server/kservepb \
  grpc_predict_v2.proto
