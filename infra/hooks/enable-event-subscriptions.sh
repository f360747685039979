#!/bin/sh
# azd postdeploy hook (see azure.yaml). Event Grid validates an AzureFunction endpoint when the
# subscription is created, so the subscriptions to on_key_vault_event can only be provisioned after the
# code is deployed. The first time, turn them on and provision again; later deploys change nothing.
set -eu

if [ "${ROTATION_EVENT_SUBSCRIPTIONS:-false}" = "true" ]; then
  echo "Event Grid subscriptions to on_key_vault_event are already provisioned."
  exit 0
fi

echo "Function code deployed: provisioning the Event Grid subscriptions to on_key_vault_event."
azd env set ROTATION_EVENT_SUBSCRIPTIONS true

attempt=1
until azd provision --no-prompt; do
  if [ "$attempt" -ge 3 ]; then
    azd env set ROTATION_EVENT_SUBSCRIPTIONS false
    echo "Could not create the Event Grid subscriptions. Check that the function on_key_vault_event is" >&2
    echo "listed (az functionapp function list -g \"${AZURE_RESOURCE_GROUP:-<resource group>}\" -n \"${FUNCTION_APP_NAME:-<function app>}\")," >&2
    echo "then run: azd env set ROTATION_EVENT_SUBSCRIPTIONS true && azd provision" >&2
    exit 1
  fi
  attempt=$((attempt + 1))
  # The host indexes the functions shortly after the package lands; Event Grid then finds the endpoint.
  echo "Retrying in 60 seconds (attempt $attempt of 3)." >&2
  sleep 60
done
