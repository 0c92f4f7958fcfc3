#!/usr/bin/env python3
"""A device under `iotcore qualify`, written with AWS's IoT Device SDK v2 for Python (awscrt MQTT
3.1.1 through awsiot.mqtt_connection_builder.mtls_from_path), with the SDK's defaults: what a
device maker who follows AWS's samples ships. It reads where to connect from the variables
`iotcore qualify --run` sets (IOTCORE_QUALIFY_HOST, _PORT, _THING, _CERT, _KEY, _CA), connects
with the thing name as client id, subscribes at QoS 1 to qualify/<thing>/in, and publishes at QoS
1 to qualify/<thing>/out every half second, until it is stopped. It runs its jobs as AWS's jobs
sample does (awsiot.iotjobs: listens to notify-next, takes the next job with
StartNextPendingJobExecution, reports it SUCCEEDED). It never reconnects by itself: the SDK does
(its defaults: 5 s first wait, doubling to 60 s).

Usage (for BENCHMARKS-style tables, not from a test):
  iotcore qualify --run '.venv/bin/python tests/peers/qualify_awsiot.py' --report DIR
"""

import os
import time

from awscrt import mqtt
from awsiot import iotjobs, mqtt_connection_builder


def run_jobs(connection, thing):
    """AWS's jobs sample, in short: each job named on notify-next (and the one pending at start) is
    taken with StartNextPendingJobExecution and reported SUCCEEDED."""
    jobs = iotjobs.IotJobsClient(connection)
    qos = mqtt.QoS.AT_LEAST_ONCE

    def start_next(*_args, **_kwargs):
        jobs.publish_start_next_pending_job_execution(
            iotjobs.StartNextPendingJobExecutionRequest(thing_name=thing), qos
        )

    def started(response):
        if response.execution is not None:
            jobs.publish_update_job_execution(
                iotjobs.UpdateJobExecutionRequest(
                    thing_name=thing,
                    job_id=response.execution.job_id,
                    status=iotjobs.JobStatus.SUCCEEDED,
                ),
                qos,
            )

    def changed(event):
        if event.execution is not None:
            start_next()

    for subscribed, _ in (
        jobs.subscribe_to_start_next_pending_job_execution_accepted(
            iotjobs.StartNextPendingJobExecutionSubscriptionRequest(thing_name=thing), qos, started
        ),
        jobs.subscribe_to_update_job_execution_accepted(
            iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name=thing, job_id="+"),
            qos,
            lambda _response: None,
        ),
        jobs.subscribe_to_next_job_execution_changed_events(
            iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=thing), qos, changed
        ),
    ):
        subscribed.result(timeout=5)
    start_next()


def main():
    thing = os.environ["IOTCORE_QUALIFY_THING"]
    connection = mqtt_connection_builder.mtls_from_path(
        endpoint=os.environ["IOTCORE_QUALIFY_HOST"],
        port=int(os.environ["IOTCORE_QUALIFY_PORT"]),
        cert_filepath=os.environ["IOTCORE_QUALIFY_CERT"],
        pri_key_filepath=os.environ["IOTCORE_QUALIFY_KEY"],
        ca_filepath=os.environ["IOTCORE_QUALIFY_CA"],
        client_id=thing,
        clean_session=True,
        keep_alive_secs=30,
    )
    while True:
        try:
            connection.connect().result(timeout=30)
            break
        except Exception:  # the first connection is not retried by the SDK; this loop does
            time.sleep(1)
    try:
        subscribed, _ = connection.subscribe(
            topic=f"qualify/{thing}/in", qos=mqtt.QoS.AT_LEAST_ONCE, callback=lambda **_: None
        )
        subscribed.result(timeout=1)
        run_jobs(connection, thing)
    except Exception:
        pass
    while True:
        try:
            connection.publish(topic=f"qualify/{thing}/out", payload="{}", qos=mqtt.QoS.AT_LEAST_ONCE)
        except Exception:
            pass
        time.sleep(0.5)


if __name__ == "__main__":
    main()
