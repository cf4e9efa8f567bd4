"""Static checks of the Terraform modules: no terraform binary or provider is reachable, so the wiring the
library relies on is asserted on the parsed configuration (python-hcl2) instead of on a plan."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import hcl2
import pytest

from aiostorage.local import WIRING

TERRAFORM = Path(__file__).resolve().parents[1] / "terraform"
MODULES = ("s3-bucket", "s3-sqs-notifications", "worker-iam", "sqs-lambda-worker")
ROOTS = (*(f"modules/{name}" for name in MODULES), "examples/complete")
META_KEYS = {"__is_block__", "__comments__", "__inline_comments__", "__start_line__", "__end_line__"}

# The Terraform variables' defaults must equal the local stack's (aiostorage.local.WIRING), so
# `aiostorage local` and `make demo` run the same wiring a user applies to AWS.
DEFAULTS = {
    ("s3-sqs-notifications", "filter_prefix"): WIRING.prefix,
    ("s3-sqs-notifications", "filter_suffixes"): list(WIRING.suffixes),
    ("s3-sqs-notifications", "events"): list(WIRING.events),
    ("s3-sqs-notifications", "max_receive_count"): WIRING.max_receive_count,
    ("s3-sqs-notifications", "visibility_timeout_seconds"): WIRING.visibility_timeout,
    ("s3-sqs-notifications", "receive_wait_time_seconds"): WIRING.receive_wait_time_seconds,
    ("s3-bucket", "uploads_prefix"): WIRING.prefix,
    ("s3-bucket", "retention_days"): WIRING.retention_days,
    ("s3-bucket", "abort_incomplete_multipart_days"): WIRING.abort_incomplete_multipart_days,
}


def _unquote(text: str) -> str:
    # python-hcl2 >= 7 keeps the quotes of string literals and labels; older versions drop them.
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text


def _normalise(node: Any) -> Any:
    if isinstance(node, dict):
        return {_unquote(key): _normalise(value) for key, value in node.items() if key not in META_KEYS}
    if isinstance(node, list):
        return [_normalise(item) for item in node]
    if isinstance(node, str):
        return _unquote(node)
    return node


def expr(value: Any) -> str:
    """The expression text of an attribute, without a `${...}` wrapping the whole of it."""
    assert isinstance(value, str), value
    if value.startswith("${") and value.endswith("}"):
        depth = 0
        for index, char in enumerate(value[1:], start=1):
            depth += char == "{"
            depth -= char == "}"
            if depth == 0:
                # The wrapper only counts when its closing brace is the last character.
                return value[2:-1] if index == len(value) - 1 else value
    return value


class Config:
    """One Terraform root or module directory, merged over its files: labels become nested dict keys."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.text = "\n".join(path.read_text() for path in sorted(directory.glob("*.tf")))
        self.blocks: dict[str, Any] = {"resource": {}, "data": {}, "variable": {}, "output": {}, "module": {}}
        self.locals: dict[str, Any] = {}
        self.provider: dict[str, Any] = {}
        self.terraform: list[dict[str, Any]] = []
        for path in sorted(directory.glob("*.tf")):
            with path.open() as file:
                parsed = _normalise(hcl2.load(file))
            for kind, entries in parsed.items():
                for entry in entries:
                    if kind in ("resource", "data"):
                        for type_, named in entry.items():
                            self.blocks[kind].setdefault(type_, {}).update(named)
                    elif kind in ("variable", "output", "module"):
                        self.blocks[kind].update(entry)
                    elif kind == "locals":
                        self.locals.update(entry)
                    elif kind == "provider":
                        self.provider.update(entry)
                    elif kind == "terraform":
                        self.terraform.append(entry)
                    else:
                        raise AssertionError(f"unexpected top-level block {kind!r} in {path}")

    def resource(self, type_: str, name: str = "this") -> dict[str, Any]:
        return self.blocks["resource"][type_][name]  # type: ignore[no-any-return]

    def data(self, type_: str, name: str) -> dict[str, Any]:
        return self.blocks["data"][type_][name]  # type: ignore[no-any-return]

    @property
    def variables(self) -> dict[str, dict[str, Any]]:
        return self.blocks["variable"]  # type: ignore[no-any-return]

    @property
    def outputs(self) -> dict[str, dict[str, Any]]:
        return self.blocks["output"]  # type: ignore[no-any-return]


@functools.cache
def config(root: str) -> Config:
    return Config(TERRAFORM / root)


def module(name: str) -> Config:
    return config(f"modules/{name}")


def one(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    assert isinstance(blocks, list), blocks
    assert len(blocks) == 1, blocks
    return blocks[0]


def dynamic(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [entry[name] for entry in body.get("dynamic", []) if name in entry]


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    static = list(document.get("statement", []))
    generated = [one(block["content"]) for block in dynamic(document, "statement")]
    return static + generated


def by_sid(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {statement["sid"]: statement for statement in statements(document)}


def conditions(statement: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    return {cond["variable"]: (cond["test"], [expr(v) for v in cond["values"]]) for cond in statement["condition"]}


# --- layout and conventions -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODULES)
def test_module_has_the_conventional_files(name: str) -> None:
    present = {path.name for path in (TERRAFORM / "modules" / name).iterdir()}
    assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"} <= present


def test_example_and_top_level_readmes_exist() -> None:
    assert "terraform apply" in (TERRAFORM / "examples/complete/README.md").read_text()
    assert "DLQ" in (TERRAFORM / "README.md").read_text()


@pytest.mark.parametrize("root", ROOTS)
def test_versions_pin_terraform_and_the_aws_provider(root: str) -> None:
    block = one(config(root).terraform)
    assert block["required_version"] == ">= 1.5"
    aws = one(block["required_providers"])["aws"]
    assert aws == {"source": "hashicorp/aws", "version": ">= 5.0"}


@pytest.mark.parametrize("root", ROOTS)
def test_every_variable_is_typed_and_described(root: str) -> None:
    variables = config(root).variables
    assert variables
    for name, body in variables.items():
        assert expr(body.get("type", "")), f"{root}: variable {name} has no type"
        assert len(body.get("description", "")) > 10, f"{root}: variable {name} has no description"


@pytest.mark.parametrize("root", ROOTS)
def test_every_output_is_described(root: str) -> None:
    for name, body in config(root).outputs.items():
        assert body.get("description"), f"{root}: output {name} has no description"


@pytest.mark.parametrize("root", ROOTS)
def test_variables_and_locals_are_declared_and_used(root: str) -> None:
    cfg = config(root)
    referenced_vars = set(re.findall(r"\bvar\.(\w+)", cfg.text))
    assert referenced_vars == set(cfg.variables), "undeclared or unused variables"
    referenced_locals = set(re.findall(r"\blocal\.(\w+)", cfg.text))
    assert referenced_locals == set(cfg.locals), "undeclared or unused locals"


@pytest.mark.parametrize(("key", "expected"), DEFAULTS.items(), ids=[f"{m}.{v}" for m, v in DEFAULTS])
def test_defaults_the_local_stack_mirrors(key: tuple[str, str], expected: object) -> None:
    module_name, variable = key
    assert module(module_name).variables[variable]["default"] == expected


# --- s3-bucket ----------------------------------------------------------------------------------------------


def test_bucket_uses_separate_v5_resources_not_inline_blocks() -> None:
    bucket = module("s3-bucket").resource("aws_s3_bucket")
    inline = {"acl", "versioning", "lifecycle_rule", "server_side_encryption_configuration", "cors_rule", "policy"}
    assert not inline & set(bucket)
    assert expr(bucket["bucket"]) == "var.bucket_name"


def test_public_access_block_has_all_four_flags_true() -> None:
    pab = module("s3-bucket").resource("aws_s3_bucket_public_access_block")
    flags = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
    assert {flag: pab[flag] for flag in flags} == dict.fromkeys(flags, True)
    assert expr(pab["bucket"]) == "aws_s3_bucket.this.id"


def test_ownership_controls_disable_acls() -> None:
    controls = module("s3-bucket").resource("aws_s3_bucket_ownership_controls")
    assert one(controls["rule"])["object_ownership"] == "BucketOwnerEnforced"


def test_default_encryption_is_sse_s3_or_kms_with_bucket_key() -> None:
    cfg = module("s3-bucket")
    rule = one(cfg.resource("aws_s3_bucket_server_side_encryption_configuration")["rule"])
    default = one(rule["apply_server_side_encryption_by_default"])
    assert expr(cfg.locals["use_kms"]) == "var.kms_key_arn != null"
    assert expr(default["sse_algorithm"]) == 'local.use_kms ? "aws:kms" : "AES256"'
    assert expr(default["kms_master_key_id"]) == "var.kms_key_arn"
    assert expr(rule["bucket_key_enabled"]) == "local.use_kms"
    assert cfg.variables["kms_key_arn"]["default"] is None


def test_versioning_follows_its_variable() -> None:
    cfg = module("s3-bucket")
    versioning = one(cfg.resource("aws_s3_bucket_versioning")["versioning_configuration"])
    assert expr(versioning["status"]) == 'var.versioning_enabled ? "Enabled" : "Suspended"'
    assert expr(cfg.variables["versioning_enabled"]["type"]) == "bool"


def test_bucket_policy_denies_requests_without_tls() -> None:
    cfg = module("s3-bucket")
    deny = by_sid(cfg.data("aws_iam_policy_document", "bucket"))["DenyInsecureTransport"]
    assert deny["effect"] == "Deny"
    assert deny["actions"] == ["s3:*"]
    assert [expr(r) for r in deny["resources"]] == ["aws_s3_bucket.this.arn", "${aws_s3_bucket.this.arn}/*"]
    assert one(deny["principals"]) == {"type": "*", "identifiers": ["*"]}
    assert conditions(deny) == {"aws:SecureTransport": ("Bool", ["false"])}
    policy = cfg.resource("aws_s3_bucket_policy")
    assert expr(policy["policy"]) == "data.aws_iam_policy_document.bucket.json"
    assert policy["depends_on"] == ["${aws_s3_bucket_public_access_block.this}"]


def test_cors_allows_presigned_browser_uploads_and_exposes_etag() -> None:
    cfg = module("s3-bucket")
    cors = cfg.resource("aws_s3_bucket_cors_configuration")
    assert expr(cors["count"]) == "length(var.cors_allowed_origins) > 0 ? 1 : 0"
    rule = one(cors["cors_rule"])
    assert expr(rule["allowed_origins"]) == "var.cors_allowed_origins"
    assert sorted(rule["allowed_methods"]) == ["GET", "HEAD", "POST", "PUT"]
    assert rule["expose_headers"] == ["ETag"]
    assert cfg.variables["cors_allowed_origins"]["default"] == []


def test_lifecycle_expires_uploads_and_aborts_incomplete_multipart_uploads() -> None:
    cfg = module("s3-bucket")
    lifecycle = cfg.resource("aws_s3_bucket_lifecycle_configuration")
    rules = {rule["id"]: rule for rule in lifecycle["rule"]}
    assert all(rule["status"] == "Enabled" for rule in rules.values())

    uploads = rules["expire-uploads"]
    assert expr(one(uploads["filter"])["prefix"]) == "var.uploads_prefix"
    assert expr(one(uploads["expiration"])["days"]) == "var.retention_days"

    abort = rules["abort-incomplete-multipart-uploads"]
    assert one(abort["filter"]) == {}
    days = one(abort["abort_incomplete_multipart_upload"])["days_after_initiation"]
    assert expr(days) == "var.abort_incomplete_multipart_days"

    noncurrent = rules["expire-noncurrent-versions"]
    assert expr(one(noncurrent["noncurrent_version_expiration"])["noncurrent_days"]) == (
        "var.noncurrent_version_retention_days"
    )
    assert one(noncurrent["expiration"]) == {"expired_object_delete_marker": True}
    assert lifecycle["depends_on"] == ["${aws_s3_bucket_versioning.this}"]


# --- s3-sqs-notifications ---------------------------------------------------------------------------------


def test_queues_are_standard_encrypted_and_long_polled() -> None:
    cfg = module("s3-sqs-notifications")
    main, dlq = cfg.resource("aws_sqs_queue"), cfg.resource("aws_sqs_queue", "dlq")
    assert expr(main["name"]) == "var.queue_name"
    assert dlq["name"] == "${var.queue_name}-dlq"
    for queue in (main, dlq):
        assert queue["fifo_queue"] is False
        assert expr(queue["sqs_managed_sse_enabled"]) == "local.use_kms ? null : true"
        assert expr(queue["kms_master_key_id"]) == "var.kms_key_arn"
    assert expr(main["receive_wait_time_seconds"]) == "var.receive_wait_time_seconds"
    assert expr(main["visibility_timeout_seconds"]) == "var.visibility_timeout_seconds"
    assert expr(main["message_retention_seconds"]) == "var.message_retention_seconds"
    assert expr(dlq["message_retention_seconds"]) == "var.dlq_message_retention_seconds"


def test_fifo_queue_names_are_rejected_by_validation() -> None:
    validations = module("s3-sqs-notifications").variables["queue_name"]["validation"]
    fifo = [v for v in validations if expr(v["condition"]) == '!endswith(var.queue_name, ".fifo")']
    assert len(fifo) == 1
    assert "FIFO" in fifo[0]["error_message"]
    # The name pattern has no '.', so it refuses ".fifo" too.
    assert expr(validations[0]["condition"]) == 'can(regex("^[A-Za-z0-9_-]{1,76}$", var.queue_name))'


def test_main_queue_redrives_to_the_dlq_which_only_accepts_it() -> None:
    cfg = module("s3-sqs-notifications")
    redrive = expr(cfg.resource("aws_sqs_queue")["redrive_policy"])
    assert re.fullmatch(
        r"jsonencode\(\{\s*deadLetterTargetArn = aws_sqs_queue\.dlq\.arn,?"
        r"\s*maxReceiveCount = var\.max_receive_count,?\s*\}\)",
        redrive,
    ), redrive
    allow = cfg.resource("aws_sqs_queue_redrive_allow_policy", "dlq")
    assert expr(allow["queue_url"]) == "aws_sqs_queue.dlq.id"
    assert re.fullmatch(
        r'jsonencode\(\{\s*redrivePermission = "byQueue",?\s*sourceQueueArns = \[aws_sqs_queue\.this\.arn\],?\s*\}\)',
        expr(allow["redrive_allow_policy"]),
    )


def test_queue_policy_lets_only_this_bucket_send_messages() -> None:
    cfg = module("s3-sqs-notifications")
    document = cfg.data("aws_iam_policy_document", "queue")
    (statement,) = statements(document)
    assert statement["effect"] == "Allow"
    assert statement["actions"] == ["sqs:SendMessage"]
    assert [expr(r) for r in statement["resources"]] == ["aws_sqs_queue.this.arn"]
    assert one(statement["principals"]) == {"type": "Service", "identifiers": ["s3.amazonaws.com"]}
    assert conditions(statement) == {
        "aws:SourceArn": ("ArnEquals", ["var.bucket_arn"]),
        "aws:SourceAccount": ("StringEquals", ["local.bucket_owner_account_id"]),
    }
    assert expr(cfg.locals["bucket_owner_account_id"]) == (
        "coalesce(var.bucket_owner_account_id, data.aws_caller_identity.current.account_id)"
    )
    policy = cfg.resource("aws_sqs_queue_policy")
    assert expr(policy["queue_url"]) == "aws_sqs_queue.this.id"
    assert expr(policy["policy"]) == "data.aws_iam_policy_document.queue.json"


def test_notification_has_one_queue_configuration_per_suffix() -> None:
    cfg = module("s3-sqs-notifications")
    notification = cfg.resource("aws_s3_bucket_notification")
    assert expr(notification["bucket"]) == "var.bucket_id"
    assert "queue" not in notification, "static queue blocks next to the generated ones"
    generated = one(dynamic(notification, "queue"))
    assert expr(generated["for_each"]) == "local.suffixes"
    assert expr(cfg.locals["suffixes"]) == 'length(var.filter_suffixes) > 0 ? var.filter_suffixes : [""]'
    content = one(generated["content"])
    assert expr(content["queue_arn"]) == "aws_sqs_queue.this.arn"
    assert expr(content["events"]) == "var.events"
    assert expr(content["filter_prefix"]) == 'var.filter_prefix != "" ? var.filter_prefix : null'
    assert expr(content["filter_suffix"]) == 'queue.value != "" ? queue.value : null'
    assert content["id"] == "${var.queue_name}${queue.value}"


def test_notification_waits_for_the_queue_policy() -> None:
    notification = module("s3-sqs-notifications").resource("aws_s3_bucket_notification")
    assert notification["depends_on"] == ["${aws_sqs_queue_policy.this}"]


# --- worker-iam ---------------------------------------------------------------------------------------------

WORKER_ACTIONS = {
    "ReadWriteObjects": {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
    },
    "ListBucket": {"s3:ListBucket"},
    "ConsumeQueue": {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
    },
    "UseEncryptionKeys": {"kms:Decrypt", "kms:GenerateDataKey"},
}


def test_worker_policy_grants_exactly_the_listed_actions() -> None:
    document = module("worker-iam").data("aws_iam_policy_document", "worker")
    granted = by_sid(document)
    assert {sid: set(s["actions"]) for sid, s in granted.items()} == WORKER_ACTIONS
    assert all(s["effect"] == "Allow" for s in granted.values())


def test_worker_policy_has_no_wildcard_action_or_resource() -> None:
    cfg = module("worker-iam")
    for statement in statements(cfg.data("aws_iam_policy_document", "worker")):
        assert not any("*" in action for action in statement["actions"]), statement
        resources = statement["resources"]
        listed = resources if isinstance(resources, list) else [resources]
        for resource in listed:
            assert expr(resource) != "*"
            assert re.fullmatch(r"(var|local|statement)\.\w+", expr(resource)), resource
    # The only "*" left are key patterns under the bucket ARN, never a bare wildcard.
    assert expr(cfg.locals["object_resources"]) == (
        '(length(var.object_prefixes) > 0 ? [for prefix in var.object_prefixes : "${var.bucket_arn}/${prefix}*"]'
        ' : ["${var.bucket_arn}/*"])'
    )


def test_worker_policy_targets_the_bucket_queue_and_keys() -> None:
    cfg = module("worker-iam")
    document = cfg.data("aws_iam_policy_document", "worker")
    granted = by_sid(document)
    assert expr(granted["ReadWriteObjects"]["resources"]) == "local.object_resources"
    assert [expr(r) for r in granted["ListBucket"]["resources"]] == ["var.bucket_arn"]
    assert [expr(r) for r in granted["ConsumeQueue"]["resources"]] == ["var.queue_arn"]
    assert expr(granted["UseEncryptionKeys"]["resources"]) == "statement.value"
    (kms,) = dynamic(document, "statement")
    assert expr(kms["for_each"]) == "length(var.kms_key_arns) > 0 ? [var.kms_key_arns] : []"
    (prefix_condition,) = dynamic(granted["ListBucket"], "condition")
    assert one(prefix_condition["content"])["variable"] == "s3:prefix"


def test_worker_policy_is_attached_only_to_a_given_role() -> None:
    cfg = module("worker-iam")
    assert expr(cfg.resource("aws_iam_policy", "worker")["policy"]) == "data.aws_iam_policy_document.worker.json"
    attachment = cfg.resource("aws_iam_role_policy_attachment", "worker")
    assert expr(attachment["count"]) == "var.role_name != null ? 1 : 0"
    assert expr(attachment["role"]) == "var.role_name"
    assert cfg.variables["role_name"]["default"] is None


# --- sqs-lambda-worker --------------------------------------------------------------------------------------


def evaluate(condition: str, values: dict[str, float]) -> bool:
    """A precondition made of arithmetic and comparisons over variables, evaluated for ``values``."""
    text = re.sub(r"\bvar\.(\w+)", lambda match: repr(values[match.group(1)]), condition)
    text = text.replace("&&", " and ").replace("||", " or ")
    assert re.fullmatch(r"[\d.\s+*<>=()-]*(\s(and|or)\s[\d.\s+*<>=()-]*)*", text), text
    return bool(eval(text, {"__builtins__": {}}))


def test_lambda_mapping_reports_batch_item_failures_from_the_queue() -> None:
    cfg = module("sqs-lambda-worker")
    mapping = cfg.resource("aws_lambda_event_source_mapping")
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    assert expr(mapping["event_source_arn"]) == "var.queue_arn"
    assert expr(mapping["function_name"]) == "aws_lambda_function.this.arn"
    assert expr(mapping["batch_size"]) == "var.batch_size"
    assert expr(mapping["maximum_batching_window_in_seconds"]) == "var.maximum_batching_window_in_seconds"
    assert expr(one(mapping["scaling_config"])["maximum_concurrency"]) == "var.maximum_concurrency"
    assert mapping["depends_on"] == ["${aws_iam_role_policy.execution}"]


def test_lambda_function_runs_the_given_zip_and_handler_on_python() -> None:
    cfg = module("sqs-lambda-worker")
    function = cfg.resource("aws_lambda_function")
    assert expr(function["filename"]) == "var.zip_path"
    assert expr(function["source_code_hash"]) == "filebase64sha256(var.zip_path)"
    assert expr(function["handler"]) == "var.handler"
    assert expr(function["runtime"]) == "var.runtime"
    assert expr(function["role"]) == "aws_iam_role.this.arn"
    assert cfg.variables["runtime"]["default"].startswith("python3.")
    runtime_rule = one(cfg.variables["runtime"]["validation"])["condition"]
    assert "python3" in runtime_rule


def test_lambda_role_has_the_worker_policy_queue_and_log_actions() -> None:
    cfg = module("sqs-lambda-worker")
    granted = by_sid(cfg.data("aws_iam_policy_document", "execution"))
    assert {sid: set(s["actions"]) for sid, s in granted.items()} == {
        "ReadTheQueue": {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"},
        "WriteLogs": {"logs:CreateLogStream", "logs:PutLogEvents"},
    }
    assert all(s["effect"] == "Allow" for s in granted.values())
    assert [expr(r) for r in granted["ReadTheQueue"]["resources"]] == ["var.queue_arn"]
    assert granted["WriteLogs"]["resources"] == ["${aws_cloudwatch_log_group.this.arn}:*"]
    assert expr(cfg.resource("aws_iam_role_policy", "execution")["policy"]) == (
        "data.aws_iam_policy_document.execution.json"
    )
    attachment = cfg.resource("aws_iam_role_policy_attachment", "worker")
    assert expr(attachment["policy_arn"]) == "var.worker_policy_arn"
    assert expr(attachment["role"]) == "aws_iam_role.this.name"
    assume = one(statements(cfg.data("aws_iam_policy_document", "assume")))
    assert assume["actions"] == ["sts:AssumeRole"]
    assert one(assume["principals"]) == {"type": "Service", "identifiers": ["lambda.amazonaws.com"]}
    log_group = cfg.resource("aws_cloudwatch_log_group")
    assert expr(log_group["name"]) == "local.log_group_name"
    assert cfg.locals["log_group_name"] == "/aws/lambda/${var.function_name}"


def test_lambda_refuses_a_visibility_timeout_under_six_function_timeouts() -> None:
    cfg = module("sqs-lambda-worker")
    preconditions = one(cfg.resource("aws_lambda_event_source_mapping")["lifecycle"])["precondition"]
    [rule] = [p for p in preconditions if "queue_visibility_timeout_seconds" in p["condition"]]
    condition = expr(rule["condition"])

    def allowed(visibility: int, timeout: int, window: int = 0) -> bool:
        values = {
            "queue_visibility_timeout_seconds": visibility,
            "timeout": timeout,
            "maximum_batching_window_in_seconds": window,
        }
        return evaluate(condition, values)

    assert allowed(180, 30) and not allowed(179, 30)
    assert allowed(300, 50) and not allowed(300, 51)
    assert allowed(185, 30, window=5) and not allowed(184, 30, window=5)
    assert "six" in rule["error_message"] or "6 x" in rule["error_message"]
    # The module's defaults fit the notifications module's default visibility timeout.
    default_visibility = module("s3-sqs-notifications").variables["visibility_timeout_seconds"]["default"]
    lambda_defaults = cfg.variables
    assert allowed(
        default_visibility,
        lambda_defaults["timeout"]["default"],
        lambda_defaults["maximum_batching_window_in_seconds"]["default"],
    )


def test_lambda_batches_over_ten_need_a_batching_window() -> None:
    preconditions = one(module("sqs-lambda-worker").resource("aws_lambda_event_source_mapping")["lifecycle"])[
        "precondition"
    ]
    [rule] = [p for p in preconditions if "batch_size" in p["condition"]]
    condition = expr(rule["condition"])
    assert evaluate(condition, {"batch_size": 10, "maximum_batching_window_in_seconds": 0})
    assert not evaluate(condition, {"batch_size": 11, "maximum_batching_window_in_seconds": 0})
    assert evaluate(condition, {"batch_size": 100, "maximum_batching_window_in_seconds": 1})


# --- examples/complete --------------------------------------------------------------------------------------

SETTINGS_OUTPUTS = {
    "AWS_S3_BUCKET_NAME": "module.bucket.bucket_id",
    "AWS_SQS_QUEUE_URL": "module.notifications.queue_url",
    "AWS_REGION": "var.region",
}


def test_example_outputs_map_one_to_one_to_the_library_settings() -> None:
    outputs = config("examples/complete").outputs
    for setting, value in SETTINGS_OUTPUTS.items():
        assert expr(outputs[setting.lower()]["value"]) == value
    environment = outputs["environment"]["value"]
    assert {key: expr(value) for key, value in environment.items()} == SETTINGS_OUTPUTS
    assert expr(outputs["dlq_url"]["value"]) == "module.notifications.dlq_url"
    assert expr(outputs["dlq_arn"]["value"]) == "module.notifications.dlq_arn"
    assert expr(outputs["worker_policy_arn"]["value"]) == "module.worker_iam.policy_arn"


def test_example_configures_the_provider_region() -> None:
    example = config("examples/complete")
    assert expr(example.provider["aws"]["region"]) == "var.region"


def test_example_module_calls_match_the_module_interfaces() -> None:
    example = config("examples/complete")
    calls = example.blocks["module"]
    assert {call["source"] for call in calls.values()} == {f"../../modules/{name}" for name in MODULES}
    for name, call in calls.items():
        target = Config((example.directory / call["source"]).resolve())
        arguments = set(call) - {"source", "count", "for_each", "depends_on", "providers"}
        assert arguments <= set(target.variables), f"module {name}: unknown arguments"
        required = {var for var, body in target.variables.items() if "default" not in body}
        assert required <= arguments, f"module {name}: required variables not set"
        for output in re.findall(rf"\bmodule\.{name}\.(\w+)", example.text):
            assert output in target.outputs, f"module.{name}.{output} is not an output"


def test_example_wires_the_modules_together() -> None:
    calls = config("examples/complete").blocks["module"]
    assert expr(calls["notifications"]["bucket_id"]) == "module.bucket.bucket_id"
    assert expr(calls["notifications"]["bucket_arn"]) == "module.bucket.bucket_arn"
    assert expr(calls["worker_iam"]["bucket_arn"]) == "module.bucket.bucket_arn"
    assert expr(calls["worker_iam"]["queue_arn"]) == "module.notifications.queue_arn"
    # One prefix for the notification filter and the lifecycle expiry, so they cannot drift apart.
    assert expr(calls["bucket"]["uploads_prefix"]) == "var.uploads_prefix"
    assert expr(calls["notifications"]["filter_prefix"]) == "var.uploads_prefix"
    assert [expr(p) for p in calls["worker_iam"]["object_prefixes"]] == ["var.uploads_prefix", "var.results_prefix"]
    key = "aws_kms_key.this.arn"
    assert expr(calls["bucket"]["kms_key_arn"]) == key
    assert expr(calls["notifications"]["kms_key_arn"]) == key
    assert [expr(arn) for arn in calls["worker_iam"]["kms_key_arns"]] == [key]


def test_example_lambda_worker_is_optional_and_wired_to_the_queue() -> None:
    example = config("examples/complete")
    call = example.blocks["module"]["lambda_worker"]
    assert expr(call["count"]) == "var.lambda_worker != null ? 1 : 0"
    assert example.variables["lambda_worker"]["default"] is None
    assert expr(call["queue_arn"]) == "module.notifications.queue_arn"
    assert expr(call["queue_visibility_timeout_seconds"]) == "module.notifications.visibility_timeout_seconds"
    assert expr(call["worker_policy_arn"]) == "module.worker_iam.policy_arn"
    assert {key: expr(value) for key, value in call["environment"].items()} == {
        "AWS_S3_BUCKET_NAME": "module.bucket.bucket_id"
    }
    output = module("s3-sqs-notifications").outputs["visibility_timeout_seconds"]
    assert expr(output["value"]) == "aws_sqs_queue.this.visibility_timeout_seconds"
