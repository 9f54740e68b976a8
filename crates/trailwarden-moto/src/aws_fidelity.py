# Starts moto_server with two of its EventBridge deviations from AWS corrected, because
# trailwarden's guard believes an event only when its envelope's `account` is the record's
# recipient account (AWS always sets it; PutEvents cannot forge it):
#
# 1. moto's default target input template leaves out "account": every event delivered to
#    a target (a queue, a bus) lost it.
# 2. Delivery to an event bus of another account re-puts the event there, and moto then
#    stamps the receiving account; AWS keeps the account of the event's origin.
#
# and two CloudTrail deviations restores depend on:
#
# 3. PutEventSelectors with basic EventSelectors keeps a trail's advanced selectors in moto;
#    AWS overwrites them ("you can use either ... but not both"), so restoring the baseline's
#    basic selectors removes an attacker's advanced ones.
#    PutInsightSelectors likewise: moto adds to a trail's Insights selectors, AWS replaces them
#    (an attacker's empty list turns Insights off).
# 3b. SnsTopicName given as an ARN (below),
#
# and what moto lacks: DisableAlarmActions / EnableAlarmActions (4),
# CloudWatch's Smithy RPC v2 CBOR protocol (5), Organizations invitations (6) and
# per-account opt-in regions (7), below.
#
# Written against moto 5.2.1 (the pinned version); if moto's code changes, this fails loudly
# at start instead of quietly serving envelopes AWS would never deliver.
import inspect
import sys
import textwrap

import moto.cloudtrail.models as cloudtrail_models
import moto.events.models as models
import moto.events.utils as utils

utils.EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = (
    '{"id": "<id>", "time": <time>, "version": "0", "detail-type": "<detail-type>", '
    '"source": "<source>", "account": "<account>", "region": "<region>", '
    '"resources": <resources>, "detail": <detail>}'
)


def patched(cls, name, replacements, module=models):
    source = textwrap.dedent(inspect.getsource(getattr(cls, name)))
    for old, new in replacements:
        if old not in source:
            sys.exit(
                f"aws_fidelity.py: moto's {cls.__name__}.{name} changed ({old!r} not found); "
                "update the patch for this moto version"
            )
        source = source.replace(old, new)
    scope = dict(vars(module))
    exec(compile(source, f"<aws_fidelity {name}>", "exec"), scope)
    setattr(cls, name, scope[name])


patched(
    models.Rule,
    "send_to_targets",
    [
        (
            '"EventBusName": arn.resource_id,',
            '"EventBusName": arn.resource_id, "TrailwardenOriginAccount": event.get("account"),',
        )
    ],
)
patched(
    models.EventsBackend,
    "put_events",
    [
        (
            'event_msg["account"] = self.account_id',
            'event_msg["account"] = event.get("TrailwardenOriginAccount") or self.account_id',
        )
    ],
)

patched(
    cloudtrail_models.Trail,
    "put_event_selectors",
    [
        (
            "self.event_selectors = event_selectors\n",
            "self.event_selectors = event_selectors\n        self.advanced_event_selectors = []\n",
        )
    ],
    module=cloudtrail_models,
)

patched(
    cloudtrail_models.Trail,
    "put_insight_selectors",
    [
        (
            "self.insight_selectors.extend(insight_selectors)",
            "self.insight_selectors = list(insight_selectors)",
        )
    ],
    module=cloudtrail_models,
)

# 3b. A trail's SnsTopicName may be the topic's ARN (AWS: "the name or ARN"); moto builds
#     the ARN from whatever it is given, so a trail re-pointed by ARN named a topic that does
#     not exist.
if not isinstance(cloudtrail_models.Trail.__dict__.get("topic_arn"), property):
    sys.exit("aws_fidelity.py: moto's Trail.topic_arn changed; update the patch for this moto version")


def _topic_arn(self):
    name = self.sns_topic_name
    if not name:
        return None
    if name.startswith("arn:"):
        return name
    return f"arn:{cloudtrail_models.get_partition(self.region_name)}:sns:{self.region_name}:{self.account_id}:{name}"


cloudtrail_models.Trail.topic_arn = property(_topic_arn)

# 4. moto answers DisableAlarmActions and EnableAlarmActions with NotImplementedError; in AWS
#    they switch the named alarms' actions off and on (an attacker's quiet way to mute them).
import moto.cloudwatch.responses as cloudwatch_responses  # noqa: E402
from moto.core.responses import EmptyResult  # noqa: E402


def _alarm_actions(enabled):
    def set_actions(self):
        alarms = {a.name: a for a in self.cloudwatch_backend.describe_alarms()}
        for name in self._get_param("AlarmNames", []):
            if name in alarms:
                alarms[name].actions_enabled = enabled
        return EmptyResult()

    return set_actions


cloudwatch_responses.CloudWatchResponse.disable_alarm_actions = _alarm_actions(False)
cloudwatch_responses.CloudWatchResponse.enable_alarm_actions = _alarm_actions(True)

# 5. moto does not speak Smithy RPC v2 CBOR, the protocol the AWS SDK for Rust uses for
#    CloudWatch (DescribeAlarmsForMetric, PutMetricAlarm, ...); moto serves the same
#    operations over the JSON protocol. This translates: the CBOR request becomes the JSON
#    request of the same operation, the JSON answer becomes CBOR, typed by botocore's model
#    of the service (timestamps as tag 1, doubles as floats, blobs as bytes), as AWS answers.
import base64  # noqa: E402
import datetime  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402

import botocore.session  # noqa: E402
import cbor2  # noqa: E402
from moto.moto_server.werkzeug_app import DomainDispatcherApplication  # noqa: E402

CBOR_PATH = re.compile(r"^/service/([A-Za-z0-9_]+)/operation/([A-Za-z0-9_]+)$")
# Smithy service name (the path) -> botocore service name.
CBOR_SERVICES = {"GraniteServiceVersion20100801": "cloudwatch"}
_models = {}


def _model(service):
    if service not in _models:
        _models[service] = botocore.session.get_session().get_service_model(service)
    return _models[service]


def _to_json(value):
    """CBOR request values -> JSON protocol values."""
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, cbor2.CBORTag) and value.tag == 1:
        return value.value
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    return value


def _to_cbor(value, shape):
    """JSON protocol values -> CBOR values of the model's types."""
    if value is None or shape is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {
            k: _to_cbor(v, shape.members.get(k)) for k, v in value.items() if v is not None
        }
    if kind == "list" and isinstance(value, list):
        return [_to_cbor(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _to_cbor(v, shape.value) for k, v in value.items()}
    if kind == "timestamp":
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        return cbor2.CBORTag(1, float(value))
    if kind in ("double", "float"):
        return float(value)
    if kind in ("integer", "long"):
        return int(value)
    if kind == "blob" and isinstance(value, str):
        return base64.b64decode(value)
    return value


def _serve_cbor(app, environ, start_response, service, operation):
    model = _model(CBOR_SERVICES[service])
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    params = _to_json(cbor2.loads(raw)) if raw else {}
    body = json.dumps(params).encode()
    inner = dict(environ)
    inner.update(
        {
            "PATH_INFO": "/",
            "RAW_URI": "/",
            "REQUEST_URI": "/",
            "CONTENT_TYPE": "application/x-amz-json-1.0",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_X_AMZ_TARGET": f"{model.metadata['targetPrefix']}.{operation}",
            "wsgi.input": io.BytesIO(body),
        }
    )
    captured = {}

    def capture(status, headers, exc_info=None):
        captured["status"] = status
        return lambda _data: None

    answer = b"".join(app(inner, capture))
    status = captured.get("status", "500 INTERNAL SERVER ERROR")
    try:
        parsed = json.loads(answer) if answer.strip() else {}
    except ValueError:
        parsed = {"__type": "InternalFailure", "message": answer.decode(errors="replace")}
    if status.startswith("2"):
        shape = model.operation_model(operation).output_shape
        out = _to_cbor(parsed, shape) if shape is not None else {}
    else:
        out = {"__type": str(parsed.get("__type", "InternalFailure")).split("#")[-1]}
        message = parsed.get("message") or parsed.get("Message")
        if message:
            out["message"] = message
    data = cbor2.dumps(out)
    start_response(
        status,
        [
            ("Content-Type", "application/cbor"),
            ("smithy-protocol", "rpc-v2-cbor"),
            ("Content-Length", str(len(data))),
        ],
    )
    return [data]


# 6. Organizations invitations. moto 5.2.1 has no InviteAccountToOrganization/AcceptHandshake,
#    so an existing account cannot join an organization. Emulated statefully: the invitation
#    is an OPEN handshake; the invited account accepting it joins the root as INVITED. Nor has
#    it LeaveOrganization: the calling member is removed as RemoveAccountFromOrganization does.
#    And a delegated administrator's listings come back empty: they are answered from the
#    management account's organization, as AWS does.
import random  # noqa: E402
import string  # noqa: E402
import time  # noqa: E402

from moto.organizations import models as org_models  # noqa: E402
from moto.organizations import responses as org_responses  # noqa: E402
from moto.organizations.exceptions import AWSOrganizationsNotInUseException  # noqa: E402
from moto.core.exceptions import JsonRESTError  # noqa: E402

_handshakes = {}


def _invite_account_to_organization(self):
    backend = self.organizations_backend
    if backend.org is None:
        raise AWSOrganizationsNotInUseException
    target = self._get_param("Target") or {}
    handshake_id = "h-" + "".join(random.choices(string.ascii_lowercase + string.digits, k=10))
    now = time.time()
    handshake = {
        "Id": handshake_id,
        "Arn": f"arn:aws:organizations::{backend.account_id}:handshake/{backend.org.id}/invite/{handshake_id}",
        "Parties": [
            {"Id": backend.org.id, "Type": "ORGANIZATION"},
            {"Id": target.get("Id", ""), "Type": target.get("Type", "ACCOUNT")},
        ],
        "State": "OPEN",
        "Action": "INVITE",
        "RequestedTimestamp": now,
        "ExpirationTimestamp": now + 15 * 86400,
        "Resources": [],
    }
    _handshakes[handshake_id] = (backend.account_id, target.get("Id", ""), handshake)
    return json.dumps({"Handshake": handshake})


def _accept_handshake(self):
    handshake_id = self._get_param("HandshakeId")
    if handshake_id not in _handshakes:
        raise JsonRESTError("HandshakeNotFoundException", f"handshake {handshake_id} not found")
    master, invited, handshake = _handshakes[handshake_id]
    if self.current_account != invited or handshake["State"] != "OPEN":
        raise JsonRESTError("AccessDeniedException", "only the invited account accepts an open handshake")
    backend = org_models.organizations_backends[master][self.partition]
    account = org_models.FakeAccount(backend.org, AccountName=f"account-{invited}", Email=f"{invited}@example.com")
    account.id = invited
    account.joined_method = "INVITED"
    backend.accounts.append(account)
    org_models.organizations_backends.master_accounts[invited] = (master, self.partition)
    handshake["State"] = "ACCEPTED"
    return json.dumps({"Handshake": handshake})


def _leave_organization(self):
    member = self.current_account
    if member not in org_models.organizations_backends.master_accounts:
        raise AWSOrganizationsNotInUseException
    master, partition = org_models.organizations_backends.master_accounts[member]
    org_models.organizations_backends[master][partition].remove_account_from_organization(
        AccountId=member
    )
    return "{}"


# A delegated administrator reads the organization as the management account does (AWS
# serves it the read-only listings; moto answers from the administrator's own, empty backend).
DELEGATED_READS = {
    "list_accounts",
    "list_accounts_for_parent",
    "list_organizational_units_for_parent",
    "list_roots",
    "list_children",
    "describe_account",
}
_backend_of = org_responses.OrganizationsResponse.organizations_backend.fget


def _backend_for_delegated_reads(self):
    own = _backend_of(self)
    member = self.current_account
    if own.org is None and member in org_models.organizations_backends.master_accounts:
        master, partition = org_models.organizations_backends.master_accounts[member]
        managing = org_models.organizations_backends[master][partition]
        reading = inspect.stack()[1].function in DELEGATED_READS
        if reading and any(a.account.id == member for a in managing.admins):
            return managing
    return own


org_responses.OrganizationsResponse.organizations_backend = property(_backend_for_delegated_reads)
org_responses.OrganizationsResponse.leave_organization = _leave_organization
org_responses.OrganizationsResponse.invite_account_to_organization = _invite_account_to_organization
org_responses.OrganizationsResponse.accept_handshake = _accept_handshake

# 7. Regions per account. moto answers EC2 DescribeRegions alike for every account and has no
#    account:EnableRegion/DisableRegion. Emulated statefully: those two calls (restJson1,
#    POST /enableRegion, /disableRegion) record an opt-in region per account, and that
#    account's DescribeRegions reports it `opted-in` (or `not-opted-in`).
from moto.ec2.models import availability_zones_and_regions as ec2_regions  # noqa: E402
from moto.iam.models import get_account_id_from  # noqa: E402

_region_opt_in = {}  # (account, region) -> "opted-in" | "not-opted-in"
_describe_regions = ec2_regions.RegionsAndZonesBackend.describe_regions


def _describe_regions_of_account(self, region_names=None):
    regions = _describe_regions(self, region_names)
    out = []
    for region in regions:
        status = _region_opt_in.get((self.account_id, region.name))
        out.append(region if status is None else ec2_regions.Region(region.name, region.endpoint, status))
    return out


ec2_regions.RegionsAndZonesBackend.describe_regions = _describe_regions_of_account
REGION_PATHS = {"/enableRegion": "opted-in", "/disableRegion": "not-opted-in"}
CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/[0-9]+/[a-z0-9-]+/([a-z0-9-]+)/")


def _serve_region_opt(environ, start_response):
    match = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
    account = body.get("AccountId") or get_account_id_from(match.group(1))
    region = body.get("RegionName", "")
    _region_opt_in[(account, region)] = REGION_PATHS[environ["PATH_INFO"]]
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]


_dispatch = DomainDispatcherApplication.__call__


def _dispatch_cbor(self, environ, start_response):
    if environ.get("PATH_INFO") in REGION_PATHS:
        scope = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        if scope and scope.group(2) == "account":
            return _serve_region_opt(environ, start_response)
    match = CBOR_PATH.match(environ.get("PATH_INFO", ""))
    if match and match.group(1) in CBOR_SERVICES:
        return _serve_cbor(
            lambda e, s: _dispatch(self, e, s), environ, start_response, *match.groups()
        )
    return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _dispatch_cbor

from moto.server import main  # noqa: E402

sys.argv[0] = "moto_server"
sys.exit(main())
