#!/usr/bin/env bash
# Measures the Service Bus worker's start-up: seconds from `dotnet tune-worker.dll` to its first /healthz answer, 5 runs.
# usage: dotnet publish functions/Serverless.Worker -c Release -o /tmp/worker && tools/measure-worker-startup.sh /tmp/worker
# The Azure settings point at names that need not exist: the processors connect in the background.
set -euo pipefail
dir=${1:?usage: measure-worker-startup.sh PUBLISH_DIR}
for run in 1 2 3 4 5; do
  port=$((18080 + run))
  start=$(date +%s.%N)
  ASPNETCORE_URLS=http://127.0.0.1:$port Storage__blobServiceUri=https://tunedev.blob.core.windows.net/ \
  ServiceBus__fullyQualifiedNamespace=tune-dev-bus.servicebus.windows.net AZURE_CLIENT_ID=00000000-0000-0000-0000-0000000000c1 \
  Trainer__JobResourceId=/subscriptions/0000/resourceGroups/rg/providers/Microsoft.App/jobs/tune-dev-trainer \
  dotnet "$dir/tune-worker.dll" > /dev/null 2>&1 &
  pid=$!
  until code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz") && [ "$code" != "000" ]; do sleep 0.02; done
  end=$(date +%s.%N)
  echo "run $run: $(echo "$end - $start" | bc) s (healthz $code)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
