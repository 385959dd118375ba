"""Execution events in both of Appwrite's shapes: up to 1.9.6 the payload names the function
`functionId`; after it (`--profile main`) `resourceId` with `resourceType`. Both publish on the
channel functions.<id>, so one route takes both; a path template that must name the function
uses the alternatives form {payload.resourceId|payload.functionId}."""

import os
import unittest

from common import IntegrationTest, PROJECT, appwrite_yaml, read_lines, wait_for

EXECUTION = "functions.[functionId].executions.[executionId].update"
SHAPES = {
    "1.9": {"$id": "e-19", "functionId": "f1", "status": "completed"},
    "main": {"$id": "e-main", "resourceId": "f1", "resourceType": "functions",
             "status": "completed"},
}


def config(emu, out):
    return appwrite_yaml(emu.endpoint, subscribe="message") + f"""\
sinks:
  by-function:
    type: file
    path: "{out}/fn-{{payload.resourceId|payload.functionId}}.jsonl"
    fsync: never
  old-template:
    type: file
    path: "{out}/old-{{payload.functionId}}.jsonl"
    fsync: never
routes:
  - name: f1-executions
    channels: [functions.f1]
    sinks: [by-function, old-template]
"""


class ExecutionShapesTest(IntegrationTest):
    def test_both_shapes_reach_the_route_and_render_the_function(self):
        out = os.path.join(self.dir, "out")
        for delivered, (profile, payload) in enumerate(SHAPES.items(), start=1):
            emu = self.start_emulator(profile=profile)
            s = self.start_sluice(config(emu, out))
            s.wait_ready()
            answer = emu.publish(event=EXECUTION,
                                 params={"functionId": "f1", "executionId": payload["$id"]},
                                 payload=payload, read=["user:bridge"], project=PROJECT)
            self.assertEqual(answer["delivered"], 1, answer)
            self.assertIn("functions.f1", answer["channels"])
            wait_for(lambda: len(read_lines(os.path.join(out, "fn-f1.jsonl"))) == delivered
                     and s.metric("sluice_sink_events_sent_total", sink="old-template") >= 1,
                     timeout=10, what=f"the {profile} execution in both sinks")
            self.assertEqual(s.stop(), 0, self.dump_on_failure(s))
            emu.stop()

        lines = read_lines(os.path.join(out, "fn-f1.jsonl"))
        self.assertEqual([line["payload"]["$id"] for line in lines], ["e-19", "e-main"])
        # A template naming only functionId renders empty for the newer shape.
        self.assertEqual([line["payload"]["$id"] for line in read_lines(
            os.path.join(out, "old-f1.jsonl"))], ["e-19"])
        self.assertEqual([line["payload"]["$id"] for line in read_lines(
            os.path.join(out, "old-.jsonl"))], ["e-main"])


if __name__ == "__main__":
    unittest.main()
