# Starts moto_server with two of its EventBridge deviations from AWS corrected, because
# trailwarden's guard believes an event only when its envelope's `account` is the record's
# recipient account (AWS always sets it; PutEvents cannot forge it):
#
# 1. moto's default target input template leaves out "account": every event delivered to
#    a target (a queue, a bus) lost it.
# 2. Delivery to an event bus of another account re-puts the event there, and moto then
#    stamps the receiving account; AWS keeps the account of the event's origin.
#
# and one CloudTrail deviation a restore depends on:
#
# 3. PutEventSelectors with basic EventSelectors keeps a trail's advanced selectors in moto;
#    AWS overwrites them ("you can use either ... but not both"), so restoring the baseline's
#    basic selectors removes an attacker's advanced ones.
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

from moto.server import main  # noqa: E402

sys.argv[0] = "moto_server"
sys.exit(main())
