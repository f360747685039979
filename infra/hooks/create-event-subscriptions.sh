#!/bin/sh
# azd postdeploy hook (azure.yaml): subscribe on_key_vault_event to every managed vault's system topic.
#
# Event Grid checks an AzureFunction endpoint when a subscription is created or updated, and the
# function exists only once the code is deployed, so this runs after `azd deploy`. It creates (or
# brings back to this definition) exactly the event subscriptions, one ARM call per vault, and touches
# nothing else: no second provisioning, so no app settings rewritten (a restart of the very app Event
# Grid is checking) and no second Graph grant. Running it again is safe: the PUT is idempotent.
#
# The definition is event-subscription.json: SecretNearExpiry and SecretExpired (and the Certificate pair,
# which the function drops unless ROTATION_CERTIFICATES is on) only
# (SecretNewVersionCreated is left out on purpose: the rotator's own writes fire it, and reacting
# would loop), one event per delivery, retries for 24 hours, then a dead letter written by the Event
# Grid identity. A topic the vault already had (systemTopicName in ROTATION_EXISTING_VAULTS) does not
# carry that identity, so its subscription goes without dead-lettering
# (event-subscription-without-dead-letter.json): an event Event Grid gives up on is dropped there, and
# the hourly sweep rotates the secret anyway.
#
# Inputs (azd outputs of infra/main.bicep): AZURE_SUBSCRIPTION_ID, ROTATION_EVENT_TOPICS
# (<group>/<topic>:created|reused, comma-separated), ROTATION_EVENT_SUBSCRIPTION_NAME,
# ROTATION_EVENT_ENDPOINT_ID, ROTATION_EVENTGRID_IDENTITY_ID, ROTATION_DEAD_LETTER_STORAGE_ID,
# ROTATION_DEAD_LETTER_CONTAINER. Run it alone with `azd hooks run postdeploy`.
set -eu

here=$(dirname "$0")
api_version=2022-06-15
attempts=5
retry_seconds=30

for name in AZURE_SUBSCRIPTION_ID ROTATION_EVENT_TOPICS ROTATION_EVENT_SUBSCRIPTION_NAME ROTATION_EVENT_ENDPOINT_ID \
  ROTATION_EVENTGRID_IDENTITY_ID ROTATION_DEAD_LETTER_STORAGE_ID ROTATION_DEAD_LETTER_CONTAINER; do
  eval "value=\${$name:-}"
  if [ -z "$value" ]; then
    echo "error: $name is not set: run this through azd after \`azd provision\` (azd hooks run postdeploy)" >&2
    exit 1
  fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Resource ids never contain '|', so it is a safe sed delimiter.
render() { # TEMPLATE OUTPUT
  sed -e "s|__ENDPOINT_ID__|$ROTATION_EVENT_ENDPOINT_ID|g" \
    -e "s|__EVENTGRID_IDENTITY_ID__|$ROTATION_EVENTGRID_IDENTITY_ID|g" \
    -e "s|__DEAD_LETTER_STORAGE_ID__|$ROTATION_DEAD_LETTER_STORAGE_ID|g" \
    -e "s|__DEAD_LETTER_CONTAINER__|$ROTATION_DEAD_LETTER_CONTAINER|g" "$1" >"$2"
}
render "$here/event-subscription.json" "$work/with-dead-letter.json"
render "$here/event-subscription-without-dead-letter.json" "$work/without-dead-letter.json"

# The subscription's provisioningState once Event Grid has finished with it (polled for up to 2 minutes).
settled_state() { # URL
  polls=0
  while :; do
    state=$(az rest --method GET --url "$1" --query properties.provisioningState --output tsv 2>/dev/null || echo Unknown)
    case "$state" in
      Creating | Updating) ;;
      *)
        echo "$state"
        return 0
        ;;
    esac
    polls=$((polls + 1))
    if [ "$polls" -ge 24 ]; then
      echo "$state"
      return 0
    fi
    sleep 5
  done
}

subscribe() { # GROUP TOPIC BODY: 0 once the subscription is in place
  topic_url="/subscriptions/$AZURE_SUBSCRIPTION_ID/resourceGroups/$1/providers/Microsoft.EventGrid/systemTopics/$2"
  url="$topic_url/eventSubscriptions/$ROTATION_EVENT_SUBSCRIPTION_NAME?api-version=$api_version"
  attempt=1
  while :; do
    if az rest --method PUT --url "$url" --body "@$3" --output none 2>"$work/error"; then
      state=$(settled_state "$url")
      if [ "$state" = "Succeeded" ]; then
        return 0
      fi
      echo "  provisioningState: $state" >&2
    else
      sed 's/^/  /' "$work/error" >&2
    fi
    if [ "$attempt" -ge "$attempts" ]; then
      return 1
    fi
    attempt=$((attempt + 1))
    # The host indexes the functions shortly after the package lands; Event Grid then finds the endpoint.
    echo "  retrying in $retry_seconds s (attempt $attempt of $attempts)" >&2
    sleep "$retry_seconds"
  done
}

# A topic the deployer named must be a Key Vault system topic, or the vault's events never arrive.
is_key_vault_topic() { # GROUP TOPIC
  kind=$(az rest --method GET \
    --url "/subscriptions/$AZURE_SUBSCRIPTION_ID/resourceGroups/$1/providers/Microsoft.EventGrid/systemTopics/$2?api-version=$api_version" \
    --query properties.topicType --output tsv 2>"$work/error") || {
    sed 's/^/  /' "$work/error" >&2
    return 1
  }
  [ "$(printf '%s' "$kind" | tr '[:upper:]' '[:lower:]')" = "microsoft.keyvault.vaults" ]
}

failed=""
for entry in $(printf '%s' "$ROTATION_EVENT_TOPICS" | tr ',' ' '); do
  group=${entry%%/*}
  rest=${entry#*/}
  topic=${rest%%:*}
  origin=${rest##*:}
  body="$work/with-dead-letter.json"
  note=""
  if [ "$origin" = "reused" ]; then
    body="$work/without-dead-letter.json"
    note=" (the vault's own topic: no dead-lettering)"
    if ! is_key_vault_topic "$group" "$topic"; then
      echo "error: $group/$topic is not a Key Vault system topic this account can read; check systemTopicName and systemTopicResourceGroupName in ROTATION_EXISTING_VAULTS" >&2
      failed="$failed $group/$topic"
      continue
    fi
  fi
  echo "Event Grid: $group/$topic -> on_key_vault_event, subscription $ROTATION_EVENT_SUBSCRIPTION_NAME$note"
  if ! subscribe "$group" "$topic" "$body"; then
    failed="$failed $group/$topic"
  fi
done

if [ -n "$failed" ]; then
  echo "error: on_key_vault_event is not subscribed to:$failed" >&2
  echo "Check that the function is listed (az functionapp function list -g \"${AZURE_RESOURCE_GROUP:-<resource group>}\" -n \"${FUNCTION_APP_NAME:-<function app>}\" --query \"[].name\")," >&2
  echo "then run this step alone: azd hooks run postdeploy. Until then the hourly sweep still rotates every secret;" >&2
  echo "only the early start on SecretNearExpiry is missing." >&2
  exit 1
fi
echo "Event Grid subscriptions are in place."
