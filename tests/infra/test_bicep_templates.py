"""Static checks of the Bicep templates under ``infra/``: what the deployment promises, pinned.

The Bicep CLI is not available here, so the templates are parsed with pycep-parser and the tests walk
the parsed form. A template pycep cannot parse fails the first test. pycep turns a parameter or
variable reference into a bare string, so a check of a literal value is written for a property that
only ever holds literals, and :func:`resolve` follows variables and parameter defaults where needed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

import pytest
from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
MAIN = INFRA / "main.bicep"
SAMPLE_SETTINGS = ROOT / "local.settings.sample.json"

HOOKS = INFRA / "hooks"

# Built-in Azure role definition ids.
KEY_VAULT_SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
EVENTGRID_DATA_SENDER = "d5a91429-5739-47e2-a06b-3470a27159e7"

# Microsoft Graph: its application id and app role ids (Microsoft Graph permissions reference).
MICROSOFT_GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
APPLICATION_READWRITE_OWNEDBY = "18a4783c-866b-4cc7-a460-3d5e5662c884"
# Read-only, and only when the deployer asks (ROTATION_GRANT_AUDIT_LOG): the sign-in activity report
# that retirement on evidence reads. The one *.All permission the hooks may name.
AUDIT_LOG_READ_ALL = "b0afded3-3588-46d8-8b3d-9842eff778da"
OPT_IN_GRAPH_PERMISSIONS = {"AuditLog.Read.All"}
TENANT_WIDE_GRAPH_ROLES = {
    "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",  # Application.ReadWrite.All
    "19dbc75e-c2e2-444c-a770-ec69d8559fc7",  # Directory.ReadWrite.All
}

KEY_VAULT_EVENT_TYPES = ["Microsoft.KeyVault.SecretNearExpiry", "Microsoft.KeyVault.SecretExpired"]
EVENT_FUNCTION_ENDPOINT = "${functionApp.id}/functions/on_key_vault_event"

# Every setting the app reads in Azure (keep in sync with rotation/settings.py and function_app.py;
# local.settings.sample.json lists the same names for local runs).
APP_SETTINGS = (
    "ROTATION_VAULTS",
    "ROTATION_TENANT_ID",
    "ROTATION_GRAPH_URL",
    "AZURE_AUTHORITY_HOST",
    "AZURE_CLIENT_ID",
    "ROTATION_VALIDITY_DAYS",
    "ROTATION_ROTATE_BEFORE_DAYS",
    "ROTATION_GRACE_HOURS",
    "ROTATION_VALIDATION_DEADLINE_SECONDS",
    "ROTATION_VALIDATION_SUCCESSES",
    "ROTATION_ORPHAN_MARGIN_MINUTES",
    "ROTATION_THROTTLE_RETRY_SECONDS",
    "ROTATION_SCHEDULE",
    "ROTATION_EXPIRY_SCHEDULE",
    "ROTATION_EXPIRY_WINDOWS_DAYS",
    "ROTATION_OPERATOR_ROLE",
    "ROTATION_READER_ROLE",
    "ROTATION_API_AUDIENCE",
    "ROTATION_ALLOWED_HOSTS",
    "ROTATION_ALLOWED_TENANTS",
    "ROTATION_SWEEP_CONCURRENCY",
    "ROTATION_EXPIRY_ALERT_DAYS",
    "ROTATION_RETIREMENT_EVIDENCE",
    "ROTATION_EVIDENCE_QUIET_HOURS",
    "ROTATION_EVENTS_TOPIC",
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
)
# Read when present; without them the host derives the endpoints from the account name.
OPTIONAL_APP_SETTINGS = frozenset({"AzureWebJobsStorage__queueServiceUri", "AzureWebJobsStorage__blobServiceUri"})
# Defaults of the numeric and text settings (rotation/settings.py).
SETTING_DEFAULTS = {
    "validityDays": 90,
    "rotateBeforeDays": 30,
    "graceHours": 24,
    "validationDeadlineSeconds": 180,
    "validationSuccesses": 3,
    "orphanMarginMinutes": 60,
    "throttleRetrySeconds": 120,
    "schedule": "0 0 * * * *",
    "expirySchedule": "0 0 6 * * *",
    "expiryWindowsDays": "30,14,7,1,0",
    "operatorRole": "Rotation.Operator",
    "readerRole": "Rotation.Reader",
    "allowedHosts": "",
    "sweepConcurrency": 4,
    "expiryAlertDays": 14,
}

# ---------------------------------------------------------------------------------------------- parsing

_PARSER = BicepParser()


@cache
def _parse(path: Path) -> dict[str, Any]:
    return cast(dict[str, Any], _PARSER.parse(file_path=path))


def template(path: Path) -> dict[str, Any]:
    """The parsed template; a template pycep cannot parse fails the calling test with the reason."""
    try:
        return _parse(path)
    except Exception as exc:
        pytest.fail(f"{path.relative_to(ROOT)} does not parse: {type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class Resource:
    path: Path
    symbol: str
    type: str
    body: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.symbol}"


def unwrap(config: Any) -> Any:
    """The body of a resource or module: without its `if (...)` condition and `[for ...]` loop."""
    while isinstance(config, dict) and "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config


def resources(type_: str, *, include_existing: bool = False) -> list[Resource]:
    found = []
    for path in BICEP_FILES:
        for symbol, resource in template(path).get("resources", {}).items():
            if resource["type"].lower() != type_.lower():
                continue
            if resource.get("existing") and not include_existing:
                continue
            found.append(Resource(path, symbol, resource["type"], unwrap(resource["config"])))
    return found


def resource_types(path: Path) -> dict[str, str]:
    """Symbolic name -> resource type, for every resource declared in ``path``."""
    return {symbol: r["type"] for symbol, r in template(path).get("resources", {}).items()}


def resolve(path: Path, value: Any) -> Any:
    """Follow a bare variable or parameter name to its value (a parameter to its default)."""
    tpl = template(path)
    seen: set[str] = set()
    while isinstance(value, str) and value not in seen:
        seen.add(value)
        if value in tpl.get("variables", {}):
            value = tpl["variables"][value]["value"]
        elif value in tpl.get("parameters", {}) and tpl["parameters"][value].get("default") is not None:
            value = tpl["parameters"][value]["default"]
        else:
            break
    return value


def dotted(value: Any) -> str:
    """A property access or function call in source-like form: ``environment().authentication.x``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "function" in value:
        return f"{value['function']['type']}()"
    if isinstance(value, dict) and value.get("operator", {}).get("type") == "property_accessor":
        operands = value["operator"]["operands"]
        return f"{dotted(operands['operand_1'])}.{dotted(operands['operand_2'])}"
    return json.dumps(value, sort_keys=True)


def walk(value: Any) -> Iterator[tuple[str | None, Any]]:
    """Every (key, value) pair below ``value``; list items come with key None."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield None, item
            yield from walk(item)


def strings(value: Any) -> Iterator[str]:
    """Every string in a parsed template, keys included (property names can carry values)."""
    for key, item in walk(value):
        if key is not None:
            yield key
        if isinstance(item, str):
            yield item


def get_ci(mapping: dict[str, Any], key: str) -> Any:
    """``mapping[key]`` ignoring case, as ARM reads property names."""
    matches = [v for k, v in mapping.items() if k.lower() == key.lower()]
    assert len(matches) == 1, f"expected one {key!r} in {sorted(mapping)}"
    return matches[0]


def strip_comments(source: str) -> str:
    """Bicep source without // and /* */ comments (string literals kept, so 'https://' survives)."""
    out: list[str] = []
    i, n = 0, len(source)
    in_string = False
    while i < n:
        ch = source[i]
        if in_string:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(source[i + 1])
                i += 1
            elif ch == "'":
                in_string = False
        elif ch == "'":
            in_string = True
            out.append(ch)
        elif source.startswith("//", i):
            while i < n and source[i] != "\n":
                i += 1
            continue
        elif source.startswith("/*", i):
            end = source.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def role_id(assignment: Resource) -> str:
    """The role definition GUID of a role assignment, following variables."""
    definition = assignment.body["properties"]["roleDefinitionId"]
    if isinstance(definition, dict) and "function" in definition:
        name = definition["function"]["parameters"]["resource_name_1"]
        value = resolve(assignment.path, name)
    else:
        value = resolve(assignment.path, definition)
    assert isinstance(value, str), f"{assignment.where}: role definition id is not a plain GUID ({value!r})"
    return value.rsplit("/", 1)[-1].lower()


def app_settings() -> tuple[Resource, dict[str, Any]]:
    configs = [r for r in resources("Microsoft.Web/sites/config") if r.body.get("name") == "appsettings"]
    assert len(configs) == 1, f"expected one appsettings config, found {[c.where for c in configs]}"
    return configs[0], configs[0].body["properties"]


def function_app() -> Resource:
    sites = resources("Microsoft.Web/sites")
    assert len(sites) == 1, f"expected one function app, found {[s.where for s in sites]}"
    return sites[0]


def hook_scripts(event: str) -> tuple[str, str]:
    """The (posix, windows) scripts azure.yaml runs for an azd hook event."""
    text = (ROOT / "azure.yaml").read_text()
    block = re.search(rf"^  {event}:\n((?:    .*\n)+)", text, re.M)
    assert block, f"azure.yaml has no {event} hook"
    runs = re.findall(r"^\s+run: (\S+)$", block.group(1), re.M)
    assert len(runs) == 2, f"{event}: expected a posix and a windows run, found {runs}"
    return runs[0], runs[1]


def hook_code(name: str) -> str:
    """A hook script without its comment lines (what it runs, not what it says)."""
    lines = (HOOKS / name).read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


# ---------------------------------------------------------------------------------------------- parsing


def test_infra_has_templates() -> None:
    assert MAIN in BICEP_FILES, "infra/main.bicep is the entry point azd provisions"


@pytest.mark.parametrize("path", BICEP_FILES, ids=[str(p.relative_to(INFRA)) for p in BICEP_FILES])
def test_every_template_parses(path: Path) -> None:
    parsed = template(path)
    assert parsed.get("resources") or parsed.get("modules"), f"{path.name} declares nothing"


def test_modules_exist_and_receive_exactly_their_parameters() -> None:
    for path in BICEP_FILES:
        for symbol, module in template(path).get("modules", {}).items():
            target = (path.parent / module["detail"]["path"]).resolve()
            assert target.is_file(), f"{path.name}:{symbol} points to missing {target}"
            declared = template(target).get("parameters", {})
            passed = set(unwrap(module["config"]).get("params", {}))
            unknown = passed - set(declared)
            assert not unknown, f"{path.name}:{symbol} passes parameters {target.name} lacks: {unknown}"
            required = {name for name, p in declared.items() if p.get("default") is None}
            missing = required - passed
            assert not missing, f"{path.name}:{symbol} omits required parameters of {target.name}: {missing}"


def test_parameters_file_supplies_every_required_parameter() -> None:
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = template(MAIN)["parameters"]
    assert set(values) <= set(declared), f"unknown parameters: {set(values) - set(declared)}"
    required = {name for name, p in declared.items() if p.get("default") is None}
    assert required <= set(values), f"azd would prompt for or miss: {required - set(values)}"
    # The steps that must not be part of the deployment have no switch in it any more (issue 11).
    assert not {"eventSubscriptionsEnabled", "grantGraphPermission"} & set(declared)
    assert values["recoverVaultNames"]["value"] == "${ROTATION_RECOVER_VAULT_NAMES=[]}"


# ---------------------------------------------------------------------------------------------- storage


def test_storage_accepts_entra_id_only_over_tls12() -> None:
    accounts = resources("Microsoft.Storage/storageAccounts")
    assert accounts, "no storage account"
    for account in accounts:
        props = account.body["properties"]
        assert props["allowSharedKeyAccess"] is False, f"{account.where}: shared keys must be off"
        assert props["defaultToOAuthAuthentication"] is True, account.where
        assert props["allowBlobPublicAccess"] is False, account.where
        assert props["supportsHttpsTrafficOnly"] is True, account.where
        assert props["minimumTlsVersion"] == "TLS1_2", account.where


def test_queues_and_containers_the_app_uses_exist_and_are_private() -> None:
    queues = {r.body["name"] for r in resources("Microsoft.Storage/storageAccounts/queueServices/queues")}
    assert {"rotation-requests", "rotation-requests-poison"} <= queues
    containers = resources("Microsoft.Storage/storageAccounts/blobServices/containers")
    names = {resolve(c.path, c.body["name"]) for c in containers}
    assert {"rotation-locks", "eventgrid-deadletter"} <= names
    for container in containers:
        assert container.body["properties"]["publicAccess"] == "None", container.where
    # The deployment package container is one of them.
    site = function_app()
    storage = site.body["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["value"] == "${blobEndpoint}${deploymentContainerName}"


def test_storage_roles_are_data_roles_on_the_dedicated_account() -> None:
    assignments = resources("Microsoft.Authorization/roleAssignments")
    by_role: dict[str, list[Resource]] = {}
    for assignment in assignments:
        by_role.setdefault(role_id(assignment), []).append(assignment)
    for role in (STORAGE_BLOB_DATA_OWNER, STORAGE_QUEUE_DATA_CONTRIBUTOR, STORAGE_TABLE_DATA_CONTRIBUTOR):
        granted = by_role.get(role, [])
        assert len(granted) == 1, f"role {role} should be granted once, found {[g.where for g in granted]}"
        assert granted[0].body["scope"] == "storage"
        assert granted[0].body["properties"]["principalId"] == "rotatorPrincipalId"
    # Event Grid's identity may only write dead letters, into their own container.
    (dead_letter,) = by_role[STORAGE_BLOB_DATA_CONTRIBUTOR]
    assert dead_letter.body["scope"] == "deadLetterContainer"
    assert dead_letter.body["properties"]["principalId"] == "eventGridPrincipalId"


# ---------------------------------------------------------------------------------------------- function app


def test_function_app_is_python_311_on_flex_consumption_with_a_user_assigned_identity() -> None:
    plans = resources("Microsoft.Web/serverfarms")
    assert len(plans) == 1
    assert plans[0].body["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    site = function_app()
    assert site.body["kind"] == "functionapp,linux"
    assert site.body["identity"]["type"] == "UserAssigned"
    config = site.body["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    authentication = config["deployment"]["storage"]["authentication"]
    assert authentication == {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": "identityId"}
    assert site.body["identity"]["userAssignedIdentities"] == {"'${identityId}'": {}}


def test_host_storage_is_reached_by_identity() -> None:
    _, settings = app_settings()
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__accountName"] == "storageAccountName"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    # azure-identity picks the same user-assigned identity for the app's own calls.
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"
    forbidden = {"AzureWebJobsStorage", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "AZURE_CLIENT_SECRET"}
    assert not forbidden & set(settings)
    # Flex Consumption sets the language in functionAppConfig.runtime and rejects these as settings.
    assert not {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION"} & set(settings)


def test_site_config_holds_only_what_flex_consumption_accepts() -> None:
    site_config = function_app().body["properties"]["siteConfig"]
    # ARM rejects these on Flex Consumption sites (error 51021); the runtime lives in functionAppConfig.
    rejected = {
        "ftpsState",
        "linuxFxVersion",
        "alwaysOn",
        "use32BitWorkerProcess",
        "netFrameworkVersion",
        "functionsRuntimeScaleMonitoringEnabled",
    }
    assert not {key.lower() for key in site_config} & {key.lower() for key in rejected}


def test_scm_basic_publishing_credentials_are_disabled() -> None:
    policies = {r.body["name"]: r.body for r in resources("Microsoft.Web/sites/basicPublishingCredentialsPolicies")}
    assert set(policies) == {"scm"}, "Flex Consumption has no FTP endpoint; SCM basic auth must be off"
    assert policies["scm"]["properties"]["allow"] is False


# ---------------------------------------------------------------------------------------------- monitoring


def test_application_insights_ingests_with_entra_id_only() -> None:
    (component,) = resources("Microsoft.Insights/components")
    assert get_ci(component.body["properties"], "disableLocalAuth") is True
    workspace = dotted(component.body["properties"]["WorkspaceResourceId"]).removesuffix(".id")
    assert resource_types(component.path)[workspace] == "Microsoft.OperationalInsights/workspaces"
    _, settings = app_settings()
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "Authorization=AAD;ClientId=${identityClientId}"
    assert dotted(settings["APPLICATIONINSIGHTS_CONNECTION_STRING"]) == "appInsights.properties.ConnectionString"
    publishers = [
        a for a in resources("Microsoft.Authorization/roleAssignments") if role_id(a) == MONITORING_METRICS_PUBLISHER
    ]
    assert len(publishers) == 1
    assert publishers[0].body["scope"] == component.symbol
    assert publishers[0].body["properties"]["principalId"] == "rotatorPrincipalId"


def test_alerts_count_failure_poison_stop_missing_expiry_and_notice_log_lines_and_mail_the_operators() -> None:
    rules = resources("Microsoft.Insights/scheduledQueryRules")
    assert rules, "no scheduled query rule"
    monitoring = rules[0].path
    queries = {
        match.group(1) for text in strings(template(monitoring)) for match in re.finditer(r'startswith "(\w+)"', text)
    }
    assert queries == {
        "RotationFailed",
        "RotationPoisoned",
        "CredentialExpiring",
        "CredentialExpiryNotice",
        "CredentialMissing",
        "RotationStopped",
    }
    for rule in rules:
        props = rule.body["properties"]
        assert [dotted(group) for group in props["actions"]["actionGroups"]] == ["actionGroup.id"]
        (criterion,) = props["criteria"]["allOf"]
        assert criterion["operator"] == "GreaterThan" and criterion["threshold"] == 0
    (group,) = resources("Microsoft.Insights/actionGroups")
    (receiver,) = group.body["properties"]["emailReceivers"]
    assert receiver["emailAddress"] == "alertEmail"
    # The expiry alert's N is the app's ROTATION_EXPIRY_ALERT_DAYS: one parameter feeds both.
    main_modules = template(MAIN)["modules"]
    assert unwrap(main_modules["monitoring"]["config"])["params"]["expiryAlertDays"] == "expiryAlertDays"
    assert unwrap(main_modules["functionApp"]["config"])["params"]["expiryAlertDays"] == "expiryAlertDays"


# Application Insights tables the alert queries read, and the telemetry type host.json's sampling names.
SAMPLED_TYPE_OF_TABLE = {"traces": "Trace", "exceptions": "Exception", "requests": "Request"}


def test_sampling_never_drops_a_line_an_alert_counts() -> None:
    """Adaptive sampling keeps a fraction of what it samples: an alert counting `traces` would then
    miss a RotationFailed line. Every table an alert reads must be excluded from sampling."""
    sampling = json.loads((ROOT / "host.json").read_text())["logging"]["applicationInsights"]["samplingSettings"]
    excluded = set(sampling.get("excludedTypes", "").split(";")) if sampling.get("isEnabled", True) else None
    rules = resources("Microsoft.Insights/scheduledQueryRules")
    tables = {
        match.group(1)
        for text in strings(template(rules[0].path))
        for match in re.finditer(r"^(\w+) \| where message startswith", text)
    }
    assert tables == {"traces"}, tables
    for table in tables:
        assert excluded is None or SAMPLED_TYPE_OF_TABLE[table] in excluded, (
            f"host.json samples {SAMPLED_TYPE_OF_TABLE[table]}, which the alerts count"
        )
    # Failures stay whole too, as before.
    assert excluded is None or {"Request", "Exception"} <= excluded


# ---------------------------------------------------------------------------------------------- Key Vault


def test_created_vaults_use_rbac_soft_delete_and_purge_protection() -> None:
    vaults = resources("Microsoft.KeyVault/vaults")
    assert vaults, "no vault is ever created"
    for vault in vaults:
        props = vault.body["properties"]
        assert props["enableRbacAuthorization"] is True, vault.where
        assert props["enableSoftDelete"] is True, vault.where
        assert props["enablePurgeProtection"] is True, vault.where
        assert not props.get("accessPolicies"), f"{vault.where}: RBAC only, no access policies"
        assert dotted(props["tenantId"]) == "tenant().tenantId"


def test_every_role_assignment_is_scoped_to_one_resource() -> None:
    for assignment in resources("Microsoft.Authorization/roleAssignments"):
        scope = assignment.body.get("scope")
        assert isinstance(scope, str), f"{assignment.where}: no resource scope (would be the resource group)"
        assert scope in resource_types(assignment.path), f"{assignment.where}: scope {scope!r} is not a resource"
        assert template(assignment.path)["globals"]["scope"]["value"] == "resourceGroup"
        assert assignment.body["properties"]["principalType"] == "ServicePrincipal"
    main_types = {r["type"] for r in template(MAIN).get("resources", {}).values()}
    assert "Microsoft.Authorization/roleAssignments" not in main_types, "no role assignment at subscription scope"


def test_secrets_officer_is_granted_on_each_vault_and_nowhere_else() -> None:
    officers = [
        a for a in resources("Microsoft.Authorization/roleAssignments") if role_id(a) == KEY_VAULT_SECRETS_OFFICER
    ]
    assert len(officers) == 1, [o.where for o in officers]
    (officer,) = officers
    assert resource_types(officer.path)[officer.body["scope"]] == "Microsoft.KeyVault/vaults"
    assert officer.body["properties"]["principalId"] == "rotatorPrincipalId"
    # The module that holds it runs once per managed vault, in the vault's resource group.
    per_vault = template(MAIN)["modules"]["vaultRotation"]
    assert per_vault["detail"]["path"] == f"modules/{officer.path.name}"
    assert per_vault["config"]["loop_type"]["detail"]["array_name"] == "managedVaults"
    scope = unwrap(per_vault["config"])["scope"]
    assert scope["function"]["type"] == "resource_group"


def test_rotation_vaults_setting_lists_every_managed_vault_with_the_cloud_dns_suffix() -> None:
    variables = template(MAIN)["variables"]
    entry = variables["vaultEntries"]["value"]
    assert entry["loop_type"]["detail"]["array_name"] == "managedVaults"
    assert entry["config"] == "${vault.name}=https://${vault.name}${environment().suffixes.keyvaultDns}"
    joined = variables["rotationVaults"]["value"]["function"]
    assert joined["type"] == "join" and joined["parameters"]["delimiter"] == ","
    assert unwrap(template(MAIN)["modules"]["functionApp"]["config"])["params"]["rotationVaults"] == "rotationVaults"
    managed = variables["managedVaults"]["value"]["function"]["parameters"]
    assert set(managed.values()) == {"createdVaultRefs", "existingVaultRefs"}


# ---------------------------------------------------------------------------------------------- Graph


def test_graph_permission_is_application_readwrite_ownedby_granted_by_its_own_step_off_by_default() -> None:
    """Granting an app role needs an Entra role a subscription Owner often lacks, and a new identity
    takes minutes to replicate: the grant is not in the deployment (a refusal there failed the whole
    provision) but a postprovision step that retries, is off unless asked, and prints the command."""
    assert resources("Microsoft.Graph/appRoleAssignedTo") == [], "the deployment grants no Graph app role"
    assert "graphPermission" not in template(MAIN).get("modules", {})
    for script in ("grant-graph-permission.sh", "grant-graph-permission.ps1"):
        text = (HOOKS / script).read_text()
        assert APPLICATION_READWRITE_OWNEDBY in text and MICROSOFT_GRAPH_APP_ID in text, script
        assert "ROTATOR_PRINCIPAL_ID" in text and "/v1.0/servicePrincipals/" in text, script
        assert "appRoleAssignments" in text, script
        assert ("Start-Sleep" if script.endswith(".ps1") else 'sleep "$delay"') in text, f"{script} must retry"
    # Off by default: only the exact value true of each role's switch asks for it (the hook tests run it).
    sh_code, ps_code = hook_code("grant-graph-permission.sh"), hook_code("grant-graph-permission.ps1")
    assert 'eval "asked=\\${$3:-false}"' in sh_code and '[ "$asked" != "true" ]' in sh_code
    assert "[Environment]::GetEnvironmentVariable($switchName) -ne 'true'" in ps_code
    for switch, role in (("ROTATION_GRANT_GRAPH_PERMISSION", "owned"), ("ROTATION_GRANT_AUDIT_LOG", "audit")):
        assert re.search(rf'grant_role \S+ "\${role}_\w+_role_id" {switch}\b', sh_code), switch
        assert re.search(rf"Grant-Role '\S+' \${role}\w+RoleId '{switch}'", ps_code), switch
    for code in (sh_code, ps_code):
        assert AUDIT_LOG_READ_ALL in code
    # Placement: after provisioning (the identity exists), and never able to stop the code deploying.
    assert hook_scripts("postprovision") == ("infra/hooks/postprovision.sh", "infra/hooks/postprovision.ps1")
    assert 'sh "$here/grant-graph-permission.sh" || grant=$?' in (HOOKS / "postprovision.sh").read_text()
    assert "'grant-graph-permission.ps1'" in (HOOKS / "postprovision.ps1").read_text()


def test_app_service_authentication_refuses_every_request_without_a_token_for_the_rotator_api() -> None:
    """A function key alone must never reach a route, and the caller must never be able to supply the
    client principal itself: only the platform's authentication module sets X-MS-CLIENT-PRINCIPAL."""
    configs = [r for r in resources("Microsoft.Web/sites/config") if r.body.get("name") == "authsettingsV2"]
    assert len(configs) == 1, [c.where for c in configs]
    (config,) = configs
    assert config.body["parent"] == function_app().symbol
    properties = config.body["properties"]
    assert properties["platform"]["enabled"] is True
    validation = properties["globalValidation"]
    assert validation["requireAuthentication"] is True
    assert validation["unauthenticatedClientAction"] == "Return401"
    # Only the Event Grid webhook (system key, no Entra token) is let through, nothing under /api.
    assert validation["excludedPaths"] == ["/runtime/webhooks/eventgrid"]
    assert properties["httpSettings"]["requireHttps"] is True
    assert properties["login"]["tokenStore"]["enabled"] is False
    entra = properties["identityProviders"]["azureActiveDirectory"]
    assert entra["enabled"] is True
    assert entra["registration"]["clientId"] == "operatorApiClientId"
    assert (
        entra["registration"]["openIdIssuer"]
        == "${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0"
    )
    audiences = json.dumps(entra["validation"]["allowedAudiences"])
    assert '"operatorApiClientId"' in audiences and '"operatorApiAudience"' in audiences
    parameters = template(config.path)["parameters"]
    assert parameters["operatorApiClientId"].get("default") is None, "the API client id must be passed in"


def test_the_rotator_api_registers_operator_and_reader_roles_and_requires_assignment() -> None:
    (api,) = resources("Microsoft.Graph/applications")
    assert "microsoftGraphV1" in template(api.path).get("extensions", {})
    assert api.body["signInAudience"] == "AzureADMyOrg"
    assert api.body["api"]["requestedAccessTokenVersion"] == 2
    roles = {resolve(api.path, role["value"]): role for role in api.body["appRoles"]}
    assert set(roles) == {"Rotation.Operator", "Rotation.Reader"}
    for role in roles.values():
        assert role["isEnabled"] is True and set(role["allowedMemberTypes"]) == {"User", "Application"}
        assert role["id"]["function"]["type"] == "guid", "role ids must be stable across redeploys"
    (principal,) = resources("Microsoft.Graph/servicePrincipals")
    assert principal.path == api.path and principal.body["appRoleAssignmentRequired"] is True
    assert dotted(principal.body["appId"]) == f"{api.symbol}.appId"
    # main.bicep registers it unless the deployer brings one, and hands its client id to the app.
    module = template(MAIN)["modules"]["operatorApi"]
    assert module["detail"]["path"] == f"modules/{api.path.name}"
    assert json.dumps(module["config"]["condition"]) == json.dumps(
        {"function": {"type": "empty", "parameters": {"item_to_test": "operatorApiClientId"}}}
    )
    assert unwrap(module["config"])["params"]["operatorRole"] == "operatorRole"
    passed = unwrap(template(MAIN)["modules"]["functionApp"]["config"])["params"]["operatorApiClientId"]
    assert "operatorApi" in json.dumps(passed) and "clientId" in json.dumps(passed)


def test_no_tenant_wide_graph_permission_anywhere() -> None:
    """No *.All permission, except the read-only AuditLog.Read.All, and that only in the grant hooks
    (behind ROTATION_GRANT_AUDIT_LOG, off by default: test_hooks.py runs it)."""
    files = [p for p in INFRA.rglob("*") if p.is_file()] + [ROOT / "azure.yaml"]
    for path in files:
        text = path.read_text()
        named = set(re.findall(r"\b[A-Za-z]+\.[A-Za-z]+\.All\b", text))
        allowed = OPT_IN_GRAPH_PERMISSIONS if path.stem == "grant-graph-permission" else set()
        assert named <= allowed, f"{path.relative_to(ROOT)} names *.All permissions {sorted(named - allowed)}"
        for role in TENANT_WIDE_GRAPH_ROLES:
            assert role not in text.lower(), f"{path.relative_to(ROOT)} holds tenant-wide app role {role}"


# ---------------------------------------------------------------------------------------------- Event Grid


def test_system_topics_watch_key_vaults() -> None:
    topics = resources("Microsoft.EventGrid/systemTopics")
    assert topics
    for topic in topics:
        assert topic.body["properties"]["topicType"] == "Microsoft.KeyVault.vaults"
        source = dotted(topic.body["properties"]["source"])
        assert resource_types(topic.path)[source.removesuffix(".id")] == "Microsoft.KeyVault/vaults"


def event_subscription_templates() -> dict[str, dict[str, Any]]:
    return {
        name: json.loads((HOOKS / name).read_text())["properties"]
        for name in ("event-subscription.json", "event-subscription-without-dead-letter.json")
    }


def test_event_subscriptions_deliver_exactly_the_expiry_events_to_the_function() -> None:
    templates = event_subscription_templates()
    for name, props in templates.items():
        assert props["filter"] == {"includedEventTypes": KEY_VAULT_EVENT_TYPES}, name
        destination = props["destination"]
        assert destination["endpointType"] == "AzureFunction"
        assert destination["properties"]["resourceId"] == "__ENDPOINT_ID__"
        assert destination["properties"]["maxEventsPerBatch"] == 1
        assert props["eventDeliverySchema"] == "EventGridSchema"
        assert props["retryPolicy"] == {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440}
        # Dead letters go to blob storage with a managed identity, never with a storage key.
        assert "deadLetterDestination" not in props
    with_dead_letter = templates["event-subscription.json"]
    dead_letter = with_dead_letter["deadLetterWithResourceIdentity"]
    assert dead_letter["identity"] == {"type": "UserAssigned", "userAssignedIdentity": "__EVENTGRID_IDENTITY_ID__"}
    assert dead_letter["deadLetterDestination"] == {
        "endpointType": "StorageBlob",
        "properties": {"resourceId": "__DEAD_LETTER_STORAGE_ID__", "blobContainerName": "__DEAD_LETTER_CONTAINER__"},
    }
    # A topic the vault already had lacks the rotator's Event Grid identity: same subscription, no dead letters.
    without = templates["event-subscription-without-dead-letter.json"]
    assert without == {k: v for k, v in with_dead_letter.items() if k != "deadLetterWithResourceIdentity"}
    # The endpoint the hook fills in is the function that handles the events.
    outputs = template(MAIN)["outputs"]
    assert outputs["ROTATION_EVENT_ENDPOINT_ID"]["value"] == "${functionApp.outputs.id}/functions/on_key_vault_event"


def test_event_subscriptions_are_created_after_the_deploy_by_a_step_that_creates_only_them() -> None:
    """Event Grid checks that on_key_vault_event exists, which is true only after `azd deploy`. The
    postdeploy step PUTs exactly the subscriptions; the old one provisioned the whole template again
    (app settings rewritten, so a restart, while Event Grid validated that very app)."""
    declared = [
        resource
        for path in BICEP_FILES
        for resource in template(path).get("resources", {}).values()
        if resource["type"] == "Microsoft.EventGrid/systemTopics/eventSubscriptions"
    ]
    assert declared == [], "the deployment declares no event subscription: it could not validate one"
    assert hook_scripts("postdeploy") == (
        "infra/hooks/create-event-subscriptions.sh",
        "infra/hooks/create-event-subscriptions.ps1",
    )
    for script in ("create-event-subscriptions.sh", "create-event-subscriptions.ps1"):
        code = hook_code(script)
        assert "--method PUT" in code and "/eventSubscriptions/" in code, script
        assert "event-subscription.json" in code and "event-subscription-without-dead-letter.json" in code


def test_no_hook_provisions_or_deploys_again() -> None:
    hooks = sorted(p.name for p in HOOKS.iterdir() if p.suffix in {".sh", ".ps1"})
    assert hooks, "no hooks"
    # A command where a command starts (a line, a pipe, `;`, `&&`, `$(`, a keyword), not a mention in a message.
    runs_again = re.compile(
        r"(?:^|[;|&(]|\b(?:then|do|else|if|elif|while|until))\s*(?:azd\s+(?:provision|up|deploy)\b|az\s+deployment\b|New-AzDeployment)",
        re.M,
    )
    for name in hooks:
        found = runs_again.search(hook_code(name))
        assert not found, f"infra/hooks/{name} runs {found.group(0).strip()!r}"
    for line in re.findall(r"^\s+run: (.+)$", (ROOT / "azure.yaml").read_text(), re.M):
        assert line.startswith("infra/hooks/"), f"azure.yaml runs {line!r} inline; keep hooks in infra/hooks"


def test_every_hook_azure_yaml_runs_exists_for_both_shells() -> None:
    for event in ("preprovision", "postprovision", "postdeploy", "postdown"):
        posix, windows = hook_scripts(event)
        assert (ROOT / posix).is_file() and (ROOT / windows).is_file(), event
        assert Path(posix).stem == Path(windows).stem, f"{event}: the two shells must run twins"
    for path in HOOKS.glob("*.sh"):
        assert path.with_suffix(".ps1").is_file(), f"{path.name} has no PowerShell twin"
        assert path.read_text().startswith("#!/bin/sh\n"), f"{path.name}: azd runs hooks with sh, so POSIX sh"
        assert "set -eu" in path.read_text(), path.name


def test_hooks_read_only_what_the_deployment_or_the_deployer_sets() -> None:
    """A variable a hook names must be an output of main.bicep, one of azd's own, or a setting the
    deployer documents: a renamed output would otherwise leave a hook reading nothing."""
    known = set(template(MAIN)["outputs"]) | {
        "AZURE_ENV_NAME",  # azd's own
        "AZURE_SUBSCRIPTION_ID",
        "ROTATION_GRANT_GRAPH_PERMISSION",  # the deployer's (docs/deploy.md)
        "ROTATION_GRANT_AUDIT_LOG",
        "ROTATION_EXISTING_VAULTS",
        "ROTATION_RECOVER_VAULT_NAMES",  # written by the preprovision hook, read by main.parameters.json
    }
    for path in sorted(HOOKS.glob("*.*")):
        if path.suffix not in {".sh", ".ps1"}:
            continue
        names = set(re.findall(r"\b(?:AZURE|ROTATION|ROTATOR|FUNCTION)_[A-Z0-9_]+\b", hook_code(path.name)))
        assert not names - known, f"infra/hooks/{path.name} names {sorted(names - known)}, which nothing sets"


# ---------------------------------------------------------------------------------------------- lifecycle events


def events_topic() -> Resource:
    topics = resources("Microsoft.EventGrid/topics")
    assert len(topics) == 1, f"expected one custom topic, found {[t.where for t in topics]}"
    return topics[0]


def optional_module_output(value: Any, module: str, output: str) -> None:
    """``condition ? (module.?outputs.<output> ?? '') : ''`` with condition rotationEventsTopic."""
    conditional = value["operator"]
    assert conditional["type"] == "conditional", json.dumps(value)
    operands = conditional["operands"]
    assert operands["condition"] == "rotationEventsTopic" and operands["false_value"] == ""
    chain = json.dumps(operands["true_value"])
    assert f'"operand_1": "{module}"' in chain and f'"operand_1": "{output}"' in chain, chain


def test_lifecycle_events_topic_takes_cloudevents_from_entra_identities_only() -> None:
    """The publisher (rotation/adapters/eventgrid.py) sends CloudEvents 1.0 with the managed
    identity's token: the topic accepts that schema only, and no access key or SAS at all."""
    topic = events_topic()
    props = topic.body["properties"]
    assert props["inputSchema"] == "CloudEventSchemaV1_0"
    assert props["disableLocalAuth"] is True, "local auth (keys, SAS) must be off: Entra-authenticated publishers only"
    assert "inputSchemaMapping" not in props
    assert props["minimumTlsVersionAllowed"] == "1.2"
    # Like the function app and the vaults: public endpoint, no VNet (docs/deploy.md).
    assert props["publicNetworkAccess"] == "Enabled"
    # It carries the Event Grid identity, which may write only dead letters, never the rotator's.
    assert topic.body["identity"] == {
        "type": "UserAssigned",
        "userAssignedIdentities": {"'${eventGridIdentityId}'": {}},
    }
    module = unwrap(template(MAIN)["modules"]["eventsTopic"]["config"])
    assert dotted(module["params"]["eventGridIdentityId"]) == "identities.outputs.eventGridId"


def test_the_rotator_may_send_to_the_topic_and_nothing_more() -> None:
    senders = [a for a in resources("Microsoft.Authorization/roleAssignments") if role_id(a) == EVENTGRID_DATA_SENDER]
    assert len(senders) == 1, [s.where for s in senders]
    (sender,) = senders
    topic = events_topic()
    assert sender.path == topic.path and sender.body["scope"] == topic.symbol, "scoped to the topic, not the group"
    assert resource_types(sender.path)[sender.body["scope"]] == "Microsoft.EventGrid/topics"
    assert sender.body["properties"]["principalId"] == "rotatorPrincipalId"
    assert sender.body["properties"]["principalType"] == "ServicePrincipal"
    module = unwrap(template(MAIN)["modules"]["eventsTopic"]["config"])
    assert dotted(module["params"]["rotatorPrincipalId"]) == "identities.outputs.rotatorPrincipalId"
    # No other Event Grid role for anyone (Contributor would let it read subscriptions and change the topic).
    eventgrid_roles = {role_id(a) for a in resources("Microsoft.Authorization/roleAssignments")} & {
        "1e241071-0855-49ea-94dc-649edcd759de",  # EventGrid Contributor
        "428e0ff0-5e57-4d9c-a221-2c70d0e0a443",  # EventGrid EventSubscription Contributor
    }
    assert not eventgrid_roles


def test_rotation_events_topic_is_the_topic_endpoint_when_asked_and_empty_otherwise() -> None:
    main = template(MAIN)
    parameter = main["parameters"]["rotationEventsTopic"]
    assert parameter["type"] == "bool" and parameter["default"] is True
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert values["rotationEventsTopic"]["value"] == "${ROTATION_CREATE_EVENTS_TOPIC=true}"
    module = main["modules"]["eventsTopic"]
    assert module["detail"]["path"] == f"modules/{events_topic().path.name}"
    assert module["config"]["condition"] == "rotationEventsTopic", "created only when the parameter asks"
    outputs = template(events_topic().path)["outputs"]
    assert dotted(outputs["endpoint"]["value"]) == f"{events_topic().symbol}.properties.endpoint"
    # The function app's ROTATION_EVENTS_TOPIC is that endpoint.
    passed = unwrap(main["modules"]["functionApp"]["config"])["params"]["eventsTopic"]
    optional_module_output(passed, "eventsTopic", "endpoint")
    _, settings = app_settings()
    assert settings["ROTATION_EVENTS_TOPIC"] == "eventsTopic"
    assert template(function_app().path)["parameters"]["eventsTopic"]["default"] == ""
    # And main.bicep hands it to subscribers: endpoint, name and the id for --source-resource-id.
    for name, output in (("ROTATION_EVENTS_TOPIC", "endpoint"), ("ROTATION_EVENTS_TOPIC_NAME", "name")):
        optional_module_output(main["outputs"][name]["value"], "eventsTopic", output)
    optional_module_output(main["outputs"]["ROTATION_EVENTS_TOPIC_ID"]["value"], "eventsTopic", "id")


def test_the_subscription_examples_name_real_outputs_and_event_types() -> None:
    """README and docs/deploy.md subscribe with `azd env get-value <output>` and filter on event types:
    the outputs must exist in main.bicep and the types must be ones the rotator publishes."""
    try:
        from rotation.adapters.eventgrid import TYPE_PREFIX
        from rotation.observability import LIFECYCLE_EVENTS
    except Exception as exc:  # another team's module; the topic checks above stand on their own
        pytest.skip(f"the publisher is not importable: {exc}")
    published = {TYPE_PREFIX + name for name in LIFECYCLE_EVENTS} | {TYPE_PREFIX + "NotBound"}
    outputs = set(template(MAIN)["outputs"])
    for doc in (ROOT / "README.md", ROOT / "docs" / "deploy.md"):
        text = doc.read_text()
        creates = re.findall(r"az eventgrid event-subscription create(?:[^\n]*\\\n)*[^\n]*", text)
        assert creates, f"{doc.name} shows no subscription"
        for command in creates:
            assert "--event-delivery-schema cloudeventschemav1_0" in command, command
            assert "--source-resource-id" in command, command
            types = re.search(r"--included-event-types ((?:Rotator\.\w+ ?)+)", command)
            assert types, command
            assert set(types.group(1).split()) <= published, command
        for name in re.findall(r"azd env get-value (\w+)", text):
            assert name in outputs, f"{doc.name} reads {name}, which main.bicep does not output"


# ---------------------------------------------------------------------------------------------- transport


def test_https_only_and_tls12_minimum_everywhere() -> None:
    site = function_app()
    props = site.body["properties"]
    assert props["httpsOnly"] is True
    assert props["siteConfig"]["minTlsVersion"] == "1.2"
    assert props["siteConfig"]["scmMinTlsVersion"] == "1.2"
    for path in BICEP_FILES:
        for key, value in walk(template(path)):
            if key and key.lower() in {"httpsonly", "supportshttpstrafficonly"}:
                assert value is True, f"{path.name}: {key} must be true"
            if key and "tlsversion" in key.lower():
                assert value in {"1.2", "1.3", "TLS1_2", "TLS1_3"}, f"{path.name}: {key}={value!r}"
        plain_http = [s for s in strings(template(path)) if "http://" in s.lower()]
        assert not plain_http, f"{path.name} has plain-http URLs: {plain_http}"


# ---------------------------------------------------------------------------------------------- secrets


def test_no_secret_or_key_in_outputs_settings_or_parameters() -> None:
    list_call = re.compile(r"\b(list[A-Z]\w*|getSecret)\s*\(")
    for path in BICEP_FILES:
        code = strip_comments(path.read_text())
        assert not list_call.search(code), f"{path.name} calls a list*()/getSecret() function"
        tpl = template(path)
        for name, output in tpl.get("outputs", {}).items():
            assert not any(d["type"] == "secure" for d in output["decorators"]), f"{path.name}: @secure output {name}"
            assert not re.search(r"secret|password|key|connectionstring", name, re.I), f"{path.name}: output {name}"
        for name, param in tpl.get("parameters", {}).items():
            # Nothing secret is an input either: identities and Entra ID replace every credential.
            assert not any(d["type"] == "secure" for d in param["decorators"]), f"{path.name}: @secure param {name}"
        for text in strings(tpl):
            for marker in ("AccountKey=", "SharedAccessSignature", "InstrumentationKey=", "ClientSecret"):
                assert marker.lower() not in text.lower(), f"{path.name} holds {marker!r}: {text!r}"
    _, settings = app_settings()
    for name in settings:
        if name == "APPLICATIONINSIGHTS_CONNECTION_STRING":
            continue  # not a secret: local authentication is disabled (test above)
        assert not re.search(r"SECRET|PASSWORD|KEY|CONNECTION", name, re.I), f"setting {name} looks like a secret"


# ---------------------------------------------------------------------------------------------- settings


def test_every_setting_the_app_reads_is_set() -> None:
    _, settings = app_settings()
    missing = [name for name in APP_SETTINGS if name not in settings]
    assert not missing, f"app settings missing from infra: {missing}"
    unexpected = set(settings) - set(APP_SETTINGS) - OPTIONAL_APP_SETTINGS
    assert not unexpected, f"settings the app does not read (add them to the list if it now does): {unexpected}"


def test_settings_come_from_the_deployment_not_from_literals() -> None:
    resource, settings = app_settings()
    assert dotted(settings["ROTATION_TENANT_ID"]) == "tenant().tenantId"
    assert dotted(settings["AZURE_AUTHORITY_HOST"]) == "environment().authentication.loginEndpoint"
    assert resolve(resource.path, settings["ROTATION_GRAPH_URL"]) == "https://graph.microsoft.com/v1.0"
    parameters = template(resource.path)["parameters"]
    for name, default in SETTING_DEFAULTS.items():
        assert parameters[name]["default"] == default, f"{name} default drifted from the app's"
    main_parameters = template(MAIN)["parameters"]
    for name, default in SETTING_DEFAULTS.items():
        if name in main_parameters:
            assert main_parameters[name]["default"] == default, f"main.bicep {name} default drifted"


def test_settings_match_local_settings_sample() -> None:
    if not SAMPLE_SETTINGS.is_file():
        pytest.skip("local.settings.sample.json does not exist yet; the fixed list above is checked instead")
    sample = set(json.loads(SAMPLE_SETTINGS.read_text())["Values"])
    runtime = json.loads(SAMPLE_SETTINGS.read_text())["Values"].get("FUNCTIONS_WORKER_RUNTIME")
    _, settings = app_settings()
    for name in sorted(sample):
        if name == "AzureWebJobsStorage":
            # In Azure the connection string is replaced by the identity-based __accountName form.
            assert settings.get("AzureWebJobsStorage__credential") == "managedidentity"
            assert "AzureWebJobsStorage__accountName" in settings
        elif name == "FUNCTIONS_WORKER_RUNTIME":
            # Flex Consumption expresses it as functionAppConfig.runtime and rejects the setting.
            assert function_app().body["properties"]["functionAppConfig"]["runtime"]["name"] == runtime
        elif name not in OPTIONAL_APP_SETTINGS:
            assert name in settings, f"{name} is in local.settings.sample.json but not set in infra"
    identity_storage = {n for n in settings if n.startswith("AzureWebJobsStorage__")}
    extra = set(settings) - sample - (identity_storage if "AzureWebJobsStorage" in sample else set())
    assert not extra, f"set in infra but missing from local.settings.sample.json: {extra}"


def test_settings_cover_the_variables_rotation_settings_reads() -> None:
    try:
        from rotation.settings import KNOWN_VARIABLES
    except Exception as exc:  # another team's module; this check only adds to the fixed list
        pytest.skip(f"rotation.settings.KNOWN_VARIABLES is not importable: {exc}")
    _, settings = app_settings()
    assert set(KNOWN_VARIABLES) <= set(settings), set(KNOWN_VARIABLES) - set(settings)


# ---------------------------------------------------------------------------------------------- azd


def test_azure_yaml_deploys_the_repository_root_as_a_python_function() -> None:
    text = (ROOT / "azure.yaml").read_text()
    assert re.search(r"^\s+host: function$", text, re.M)
    assert re.search(r"^\s+language: python$", text, re.M)
    assert re.search(r"^\s+project: \.$", text, re.M)
    service = re.search(r"^services:\n\s+(\w+):", text, re.M)
    assert service, "azure.yaml has no service"
    # azd finds the app to deploy by this tag.
    assert resolve(function_app().path, "serviceName") == service.group(1)


def test_azure_yaml_requires_an_azd_that_neither_deletes_brought_resource_groups_nor_stringifies_arrays() -> None:
    """azd before 1.24.1 deletes, on `azd down`, the resource group of every vault you bring (the
    deployment puts a role assignment and a system topic there); before 1.23.4 it sent the array
    parameters as the string "[]". One floor covers both."""
    text = (ROOT / "azure.yaml").read_text()
    floor = re.search(r"^requiredVersions:\n  azd: \"?>= ?(\d+)\.(\d+)\.(\d+)\"?$", text, re.M)
    assert floor, "azure.yaml must pin a minimum azd version (requiredVersions.azd)"
    assert tuple(int(part) for part in floor.groups()) >= (1, 24, 1)
    # The array parameters are passed as JSON arrays from the environment, which the floor makes safe.
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    for name in ("createVaultNames", "existingVaults", "recoverVaultNames"):
        assert template(MAIN)["parameters"][name]["type"] == "array"
        assert values[name]["value"].endswith("=[]}"), name


def test_names_outside_the_environments_resource_group_carry_the_environment() -> None:
    """A second environment that brings the same vault must fail on the second system topic (Key
    Vault allows one per vault), not silently take over the first one's topic and subscription."""
    variables = template(MAIN)["variables"]
    unique = variables["resourceToken"]["value"]["function"]["parameters"]["string_to_change"]["function"]
    assert unique["type"] == "unique_string" and "environmentName" in unique["parameters"].values()
    assert variables["eventSubscriptionName"]["value"] == "rotator-secret-expiry-${resourceToken}"
    assert template(MAIN)["outputs"]["ROTATION_EVENT_SUBSCRIPTION_NAME"]["value"] == "eventSubscriptionName"
    for refs in ("createdVaultRefs", "existingVaultRefs"):
        name = json.dumps(variables[refs]["value"]["config"]["systemTopicName"])
        assert "evgt-${" in name and "}-${resourceToken}" in name, refs
    # The module creates the topic under exactly the name it is given: no fixed name of its own.
    (topic,) = resources("Microsoft.EventGrid/systemTopics")
    assert topic.body["name"] == "systemTopicName"
    # The default vault is per environment too (its name is global and held 90 days after deletion).
    assert json.dumps(variables["vaultsToCreate"]["value"]).count("kv-${resourceToken}") == 1


def test_a_brought_vault_that_has_a_system_topic_reuses_it() -> None:
    """Key Vault allows one system topic per vault: a vault you bring with one names it
    (systemTopicName), the deployment creates none for it, and the postdeploy step subscribes there."""
    module = INFRA / "modules" / "vault-rotation.bicep"
    (topic,) = [r for r in template(module)["resources"].values() if r["type"] == "Microsoft.EventGrid/systemTopics"]
    assert topic["config"]["condition"] == "createSystemTopic"
    per_vault = unwrap(template(MAIN)["modules"]["vaultRotation"]["config"])["params"]
    assert dotted(per_vault["systemTopicName"]) == "vault.systemTopicName"
    assert per_vault["createSystemTopic"]["operator"]["type"] == "not"
    assert dotted(per_vault["createSystemTopic"]["operator"]["operands"]["bool_value"]) == "vault.reuseSystemTopic"
    existing = template(MAIN)["variables"]["existingVaultRefs"]["value"]["config"]
    named = existing["systemTopicName"]["operator"]
    assert named["type"] == "coalesce" and dotted(named["operands"]["operand_1"]) == "vault.systemTopicName"
    # reuseSystemTopic = !empty(vault.?systemTopicName ?? ''): reused exactly when the deployer names one.
    reuse = existing["reuseSystemTopic"]["operator"]
    assert reuse["type"] == "not"
    emptiness = reuse["operands"]["bool_value"]["function"]
    assert emptiness["type"] == "empty"
    coalesced = emptiness["parameters"]["item_to_test"]["operator"]["operands"]
    assert dotted(coalesced["operand_1"]) == "vault.systemTopicName" and coalesced["operand_2"] == ""
    created = template(MAIN)["variables"]["createdVaultRefs"]["value"]["config"]
    assert created["reuseSystemTopic"] is False
    topics = template(MAIN)["variables"]["eventTopics"]["value"]
    assert topics["loop_type"]["detail"]["array_name"] == "managedVaults"
    assert topics["config"] == (
        "${vault.systemTopicResourceGroupName}/${vault.systemTopicName}"
        ":${vault.reuseSystemTopic ? 'reused' : 'created'}"
    )
    assert template(MAIN)["outputs"]["ROTATION_EVENT_TOPICS"]["value"]["function"]["type"] == "join"


def test_the_default_instance_cap_is_small_and_the_platform_floor_allows_it() -> None:
    site = function_app()
    cap = site.body["properties"]["functionAppConfig"]["scaleAndConcurrency"]["maximumInstanceCount"]
    assert cap == "maximumInstanceCount"
    for path in (site.path, MAIN):
        parameter = template(path)["parameters"]["maximumInstanceCount"]
        assert 1 <= parameter["default"] <= 4, f"{path.name}: a rotator that calls Graph wants a small cap"
        bounds = {d["type"]: d["argument"] for d in parameter["decorators"] if d["type"] in {"min_value", "max_value"}}
        assert bounds == {"min_value": 1, "max_value": 1000}, f"{path.name}: Flex Consumption allows 1-1000"
    passed = unwrap(template(MAIN)["modules"]["functionApp"]["config"])["params"]
    assert passed["maximumInstanceCount"] == "maximumInstanceCount"
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    default = template(MAIN)["parameters"]["maximumInstanceCount"]["default"]
    assert values["maximumInstanceCount"]["value"] == f"${{ROTATION_MAXIMUM_INSTANCE_COUNT={default}}}"


def test_after_azd_down_the_soft_deleted_vaults_of_the_environment_are_recovered_not_created() -> None:
    (vault,) = resources("Microsoft.KeyVault/vaults")
    assert vault.body["properties"]["createMode"] == "createMode"
    parameter = template(vault.path)["parameters"]["createMode"]
    assert parameter["default"] == "default"
    allowed = [d["argument"] for d in parameter["decorators"] if d["type"] == "allowed"]
    assert allowed == [["default", "recover"]]
    passed = unwrap(template(MAIN)["modules"]["createdVaults"]["config"])["params"]["createMode"]
    assert "recoverVaultNames" in json.dumps(passed) and '"recover"' in json.dumps(passed)
    assert hook_scripts("preprovision") == (
        "infra/hooks/recover-deleted-vaults.sh",
        "infra/hooks/recover-deleted-vaults.ps1",
    )
    for script in ("recover-deleted-vaults.sh", "recover-deleted-vaults.ps1"):
        code = hook_code(script)
        assert "keyvault list-deleted --resource-type vault" in code and "azd-env-name" in code, script
        assert "azd env set ROTATION_RECOVER_VAULT_NAMES" in code, script


def test_post_provision_checks_that_every_managed_vault_uses_rbac() -> None:
    """Key Vault Secrets Officer grants nothing on a vault that still uses access policies."""
    ids = template(MAIN)["variables"]["managedVaultIds"]["value"]
    assert ids["loop_type"]["detail"]["array_name"] == "managedVaults"
    assert template(MAIN)["outputs"]["ROTATION_VAULT_IDS"]["value"]["function"]["type"] == "join"
    assert 'sh "$here/check-vault-rbac.sh" || status=$?' in (HOOKS / "postprovision.sh").read_text()
    assert "'check-vault-rbac.ps1'" in (HOOKS / "postprovision.ps1").read_text()
    for script in ("check-vault-rbac.sh", "check-vault-rbac.ps1"):
        code = hook_code(script)
        assert "properties.enableRbacAuthorization" in code and "ROTATION_VAULT_IDS" in code, script
        assert "--enable-rbac-authorization true" in code, f"{script} must say how to switch the vault"


# ---------------------------------------------------------------------------------------------- checkov


def test_every_checkov_skip_sits_in_a_resource_and_gives_a_reason() -> None:
    for path in BICEP_FILES:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if "checkov:skip" not in line:
                continue
            match = re.fullmatch(r"\s*// checkov:skip=(CKV2?_[A-Z]+_\d+): (.{10,})", line)
            assert match, f"{path.name}:{number}: write `// checkov:skip=CKV_...: reason` on its own line"
            # checkov reads a skip only between a resource's first and last line, i.e. indented.
            assert line.startswith("    "), f"{path.name}:{number}: put the skip inside the resource body"


def test_the_function_checks_the_audiences_app_service_authentication_accepts() -> None:
    """ROTATION_API_AUDIENCE (the function's own token check) names the API's client id and, when
    set, its identifier URI: the same audiences as authsettingsV2's allowedAudiences."""
    _, settings = app_settings()
    audience = json.dumps(settings["ROTATION_API_AUDIENCE"])
    assert "operatorApiClientId" in audience and "operatorApiAudience" in audience
    assert settings["ROTATION_READER_ROLE"] == "readerRole"
