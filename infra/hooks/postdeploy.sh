#!/usr/bin/env bash
# azd postdeploy hook (azure.yaml): subscribes the DatasetUploaded blob trigger (Event Grid source) to BlobCreated events
# of the datasets container. It can't be in Bicep: the webhook URL carries the host's blobs_extension system key, which
# exists only after the code is deployed and the host has started, and Event Grid validates the endpoint on creation,
# which needs the running code. Modelled on Azure-Samples/functions-quickstart-dotnet-azd-eventgrid-blob (scripts/post-up.sh).
#
# Idempotent: re-runs update the subscription in place (the key can change, e.g. after a key rotation).
# Reads the Bicep outputs that azd exports to hooks as environment values:
#   AZURE_RESOURCE_GROUP, AZURE_FUNCTIONS_APP_NAME, AZURE_FUNCTIONS_HOST, AZURE_STORAGE_EVENTS_TOPIC
set -euo pipefail

: "${AZURE_RESOURCE_GROUP:?not set: run azd provision first}"
: "${AZURE_FUNCTIONS_APP_NAME:?not set: run azd provision first}"
: "${AZURE_FUNCTIONS_HOST:?not set: run azd provision first}"
: "${AZURE_STORAGE_EVENTS_TOPIC:?not set: run azd provision first}"

subscription_name="datasets-created"
function_name="DatasetUploaded"
container="${DATASETS_CONTAINER:-datasets}"
attempts="${BLOBS_KEY_ATTEMPTS:-12}"
delay="${BLOBS_KEY_DELAY_SECONDS:-15}"

if ! command -v az >/dev/null 2>&1; then
  echo "postdeploy: the Azure CLI (az) is required" >&2
  exit 1
fi

# The host creates the blobs_extension key when it first loads the blob trigger, a moment after the deployment.
key=""
for ((attempt = 1; attempt <= attempts; attempt++)); do
  key="$(az functionapp keys list \
    --name "$AZURE_FUNCTIONS_APP_NAME" \
    --resource-group "$AZURE_RESOURCE_GROUP" \
    --query "systemKeys.blobs_extension" \
    --output tsv 2>/dev/null || true)"
  if [[ -n "$key" ]]; then
    break
  fi
  echo "postdeploy: blobs_extension key not there yet (attempt $attempt/$attempts), waiting ${delay}s"
  sleep "$delay"
done

if [[ -z "$key" ]]; then
  echo "postdeploy: no blobs_extension system key on $AZURE_FUNCTIONS_APP_NAME after $attempts attempts; is the DatasetUploaded function deployed and the host running?" >&2
  exit 1
fi

endpoint="https://${AZURE_FUNCTIONS_HOST}/runtime/webhooks/blobs?functionName=Host.Functions.${function_name}&code=${key}"
subject="/blobServices/default/containers/${container}/"

if az eventgrid system-topic event-subscription show \
  --name "$subscription_name" \
  --resource-group "$AZURE_RESOURCE_GROUP" \
  --system-topic-name "$AZURE_STORAGE_EVENTS_TOPIC" \
  --output none 2>/dev/null; then
  echo "postdeploy: updating event subscription $subscription_name on $AZURE_STORAGE_EVENTS_TOPIC"
  az eventgrid system-topic event-subscription update \
    --name "$subscription_name" \
    --resource-group "$AZURE_RESOURCE_GROUP" \
    --system-topic-name "$AZURE_STORAGE_EVENTS_TOPIC" \
    --endpoint "$endpoint" \
    --included-event-types Microsoft.Storage.BlobCreated \
    --subject-begins-with "$subject" \
    --output none
else
  echo "postdeploy: creating event subscription $subscription_name on $AZURE_STORAGE_EVENTS_TOPIC"
  az eventgrid system-topic event-subscription create \
    --name "$subscription_name" \
    --resource-group "$AZURE_RESOURCE_GROUP" \
    --system-topic-name "$AZURE_STORAGE_EVENTS_TOPIC" \
    --endpoint-type webhook \
    --endpoint "$endpoint" \
    --included-event-types Microsoft.Storage.BlobCreated \
    --subject-begins-with "$subject" \
    --output none
fi

echo "postdeploy: BlobCreated events of container '$container' go to $function_name"
