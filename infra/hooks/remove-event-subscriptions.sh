#!/bin/sh
# azd postdown hook (azure.yaml): remove this environment's Event Grid subscriptions from the system
# topics that `azd down` did not delete.
#
# `azd down` deletes the rotator's resource group and everything in it, including the topics of the
# vaults it created. The topics of vaults you brought live in their own resource groups, which azd
# leaves alone, so the subscriptions this environment added there would keep pointing at a function
# that no longer exists. Only the subscription named for this environment
# (ROTATION_EVENT_SUBSCRIPTION_NAME) is removed; the topics, the vaults, the rotator's role assignment
# on each vault and every other subscription stay (docs/deploy.md says how to remove what you no
# longer want).
set -eu

topics=${ROTATION_EVENT_TOPICS:-}
name=${ROTATION_EVENT_SUBSCRIPTION_NAME:-}
deleted_group=${AZURE_RESOURCE_GROUP:-}
if [ -z "$topics" ] || [ -z "$name" ] || [ -z "${AZURE_SUBSCRIPTION_ID:-}" ]; then
  echo "No Event Grid subscriptions recorded for this environment; nothing to remove."
  exit 0
fi

errors=$(mktemp)
trap 'rm -f "$errors"' EXIT

for entry in $(printf '%s' "$topics" | tr ',' ' '); do
  group=${entry%%/*}
  rest=${entry#*/}
  topic=${rest%%:*}
  if [ "$group" = "$deleted_group" ]; then
    continue # deleted with the resource group
  fi
  url="/subscriptions/$AZURE_SUBSCRIPTION_ID/resourceGroups/$group/providers/Microsoft.EventGrid/systemTopics/$topic/eventSubscriptions/$name?api-version=2022-06-15"
  if az rest --method DELETE --url "$url" --output none 2>"$errors"; then
    echo "Event Grid: removed subscription $name from $group/$topic."
  elif grep -q -i -e "notfound" -e "not found" "$errors"; then
    echo "Event Grid: $group/$topic has no subscription $name (or no longer exists)."
  else
    # azd down itself succeeded: say what is left and how to remove it, without failing the command.
    sed 's/^/  /' "$errors" >&2
    echo "warning: could not remove subscription $name from $group/$topic; remove it with:" >&2
    echo "  az eventgrid system-topic event-subscription delete -g $group --system-topic-name $topic -n $name --yes" >&2
  fi
done
