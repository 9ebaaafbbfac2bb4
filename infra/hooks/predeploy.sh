#!/usr/bin/env bash
# azd predeploy hook (azure.yaml): the trainer is a Container Apps job, which azd cannot deploy as a service. This builds
# its GPU image in the registry (ACR Tasks, no local Docker needed), points the job at it, and records it in the azd
# environment (TRAINER_IMAGE, read by infra/main.parameters.json) so that a later `azd provision` keeps it.
#
# Build arguments: the CUDA libtorch backend and a CUDA runtime base, as documented in src/Serverless.Trainer/Dockerfile.
# Override with TRAINER_LIBTORCH / TRAINER_BASE; set SKIP_TRAINER_BUILD=true to deploy only the services.
# Reads the Bicep outputs that azd exports to hooks as environment values:
#   AZURE_RESOURCE_GROUP, AZURE_CONTAINER_REGISTRY_NAME, AZURE_CONTAINER_REGISTRY_ENDPOINT, AZURE_TRAINER_JOB_NAME
set -euo pipefail

if [[ "${SKIP_TRAINER_BUILD:-false}" == "true" ]]; then
  echo "predeploy: SKIP_TRAINER_BUILD=true, trainer image left as is"
  exit 0
fi

: "${AZURE_RESOURCE_GROUP:?not set: run azd provision first}"
: "${AZURE_CONTAINER_REGISTRY_NAME:?not set: run azd provision first}"
: "${AZURE_CONTAINER_REGISTRY_ENDPOINT:?not set: run azd provision first}"
: "${AZURE_TRAINER_JOB_NAME:?not set: run azd provision first}"

for tool in az azd; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "predeploy: $tool is required" >&2
    exit 1
  fi
done

libtorch="${TRAINER_LIBTORCH:-libtorch-cuda-12.8-linux-x64}"
base="${TRAINER_BASE:-nvidia/cuda:12.8.0-cudnn-runtime-ubuntu24.04}"
repository="tune-trainer"

# The Dockerfile copies the whole solution: the build context is the repository root (this script's ../..).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# The tag is a hash of what the image is built from (committed sources and build files, and the build arguments), so
# a deploy that changed none of them (a Functions-only change, a re-run) reuses the image instead of building it again (a CUDA build takes minutes).
inputs=(src build Directory.Build.props Directory.Build.targets Directory.Packages.props global.json)
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1 && git -C "$root" diff --quiet HEAD -- "${inputs[@]}" \
  && [[ -z "$(git -C "$root" ls-files --others --exclude-standard -- "${inputs[@]}")" ]]; then
  tag="src-$({ git -C "$root" ls-tree -r HEAD -- "${inputs[@]}"; echo "$libtorch $base"; } | sha256sum | cut -c1-16)"
else
  tag="local-$(date -u +%Y%m%d%H%M%S)"   # uncommitted changes: always build
fi
image="${AZURE_CONTAINER_REGISTRY_ENDPOINT}/${repository}:${tag}"

if az acr repository show --name "$AZURE_CONTAINER_REGISTRY_NAME" --image "${repository}:${tag}" --output none 2>/dev/null; then
  echo "predeploy: $image already built from these sources, not building again"
else
  echo "predeploy: building $image in $AZURE_CONTAINER_REGISTRY_NAME"
  az acr build \
    --registry "$AZURE_CONTAINER_REGISTRY_NAME" \
    --image "${repository}:${tag}" \
    --file "$root/src/Serverless.Trainer/Dockerfile" \
    --build-arg "LIBTORCH=${libtorch}" \
    --build-arg "BASE=${base}" \
    --platform linux/amd64 \
    "$root"
fi

echo "predeploy: pointing job $AZURE_TRAINER_JOB_NAME at $image"
az containerapp job update \
  --name "$AZURE_TRAINER_JOB_NAME" \
  --resource-group "$AZURE_RESOURCE_GROUP" \
  --container-name trainer \
  --image "$image" \
  --output none

azd env set TRAINER_IMAGE "$image"
echo "predeploy: TRAINER_IMAGE=$image"
