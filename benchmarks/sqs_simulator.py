"""An in-memory SQS for benchmarks: the JSON protocol botocore speaks, O(1) per message, optional latency.

moto 5.2.5's ReceiveMessage rescans the whole queue several times for every message it returns (its
retention check recomputes the queue's attributes), so a queue 5,000 messages deep costs seconds per
receive and a drain is quadratic: it measures moto, not the client. This server keeps ready messages in
a deque and in-flight ones in a heap, answers after ``--delay`` seconds (SQS's own latency is ~10 ms in
region) with many requests overlapping, and implements only what the benchmark uses: CreateQueue,
DeleteQueue, GetQueueAttributes, SendMessageBatch, ReceiveMessage (long polling, visibility timeout,
ApproximateReceiveCount), DeleteMessageBatch, ChangeMessageVisibility(Batch). A benchmark instrument,
never a test double for correctness.

    python -m benchmarks.sqs_simulator --port 9324 [--delay 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import heapq
import itertools
import json
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ACCOUNT = "123456789012"


@dataclass
class Message:
    message_id: str
    body: str
    md5: str
    receipt: str | None = None
    visible_at: float = 0.0
    receive_count: int = 0


@dataclass
class Queue:
    visibility_timeout: int = 30
    messages: dict[str, Message] = field(default_factory=dict)
    ready: deque[str] = field(default_factory=deque)
    in_flight: list[tuple[float, str, str]] = field(default_factory=list)  # (visible_at, id, receipt)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def expire(self, now: float) -> None:
        while self.in_flight and self.in_flight[0][0] <= now:
            _, message_id, receipt = heapq.heappop(self.in_flight)
            message = self.messages.get(message_id)
            if message is not None and message.receipt == receipt and message.visible_at <= now:
                message.receipt = None
                self.ready.append(message_id)

    def hide(self, message: Message, seconds: float, now: float) -> None:
        message.visible_at = now + seconds
        heapq.heappush(self.in_flight, (message.visible_at, message.message_id, message.receipt or ""))


class Simulator:
    def __init__(self, base_url: str, delay: float) -> None:
        self.base_url = base_url
        self.delay = delay
        self.queues: dict[str, Queue] = {}
        self.receipts = itertools.count()

    def queue(self, body: dict[str, Any]) -> Queue:
        name = str(body["QueueUrl"]).rsplit("/", 1)[-1]
        try:
            return self.queues[name]
        except KeyError:
            raise SqsError("QueueDoesNotExist", "The specified queue does not exist.") from None

    def find(self, queue: Queue, receipt: str) -> Message:
        message = queue.messages.get(receipt.split(":", 1)[0])
        if message is None or message.receipt != receipt:
            raise SqsError("ReceiptHandleIsInvalid", "The receipt handle is not valid.")
        return message

    async def handle(self, request: web.Request) -> web.Response:
        operation = request.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
        body = json.loads(await request.read() or b"{}")
        if self.delay:
            await asyncio.sleep(self.delay)
        try:
            result = await getattr(self, f"op_{operation}")(body)
        except SqsError as exc:
            payload = {"__type": f"com.amazonaws.sqs#{exc.code}", "message": exc.message}
            return web.json_response(payload, status=400, content_type="application/x-amz-json-1.0")
        return web.json_response(result, content_type="application/x-amz-json-1.0")

    async def op_CreateQueue(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["QueueName"]
        timeout = int(body.get("Attributes", {}).get("VisibilityTimeout", 30))
        self.queues.setdefault(name, Queue(visibility_timeout=timeout))
        return {"QueueUrl": f"{self.base_url}/{ACCOUNT}/{name}"}

    async def op_DeleteQueue(self, body: dict[str, Any]) -> dict[str, Any]:
        self.queue(body)
        del self.queues[str(body["QueueUrl"]).rsplit("/", 1)[-1]]
        return {}

    async def op_GetQueueAttributes(self, body: dict[str, Any]) -> dict[str, Any]:
        queue = self.queue(body)
        now = time.monotonic()
        queue.expire(now)
        visible = len(queue.ready)
        return {
            "Attributes": {
                "VisibilityTimeout": str(queue.visibility_timeout),
                "ApproximateNumberOfMessages": str(visible),
                "ApproximateNumberOfMessagesNotVisible": str(len(queue.messages) - visible),
            }
        }

    async def op_SendMessageBatch(self, body: dict[str, Any]) -> dict[str, Any]:
        queue = self.queue(body)
        successful = []
        for entry in body["Entries"]:
            text = entry["MessageBody"]
            message = Message(str(uuid.uuid4()), text, hashlib.md5(text.encode()).hexdigest())
            queue.messages[message.message_id] = message
            queue.ready.append(message.message_id)
            successful.append({"Id": entry["Id"], "MessageId": message.message_id, "MD5OfMessageBody": message.md5})
        queue.arrived.set()
        queue.arrived = asyncio.Event()
        return {"Successful": successful, "Failed": []}

    async def op_ReceiveMessage(self, body: dict[str, Any]) -> dict[str, Any]:
        queue = self.queue(body)
        wanted = int(body.get("MaxNumberOfMessages", 1))
        timeout = int(body.get("VisibilityTimeout", queue.visibility_timeout))
        deadline = time.monotonic() + int(body.get("WaitTimeSeconds", 0))
        while True:
            now = time.monotonic()
            queue.expire(now)
            if queue.ready or now >= deadline:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(queue.arrived.wait(), timeout=min(0.05, deadline - now))
        messages = []
        while queue.ready and len(messages) < wanted:
            message = queue.messages.get(queue.ready.popleft())
            if message is None:
                continue
            message.receive_count += 1
            message.receipt = f"{message.message_id}:{next(self.receipts)}"
            queue.hide(message, timeout, now)
            messages.append(
                {
                    "MessageId": message.message_id,
                    "ReceiptHandle": message.receipt,
                    "MD5OfBody": message.md5,
                    "Body": message.body,
                    "Attributes": {"ApproximateReceiveCount": str(message.receive_count)},
                }
            )
        return {"Messages": messages} if messages else {}

    async def op_DeleteMessageBatch(self, body: dict[str, Any]) -> dict[str, Any]:
        queue = self.queue(body)
        successful, failed = [], []
        for entry in body["Entries"]:
            try:
                message = self.find(queue, entry["ReceiptHandle"])
            except SqsError as exc:
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": exc.code, "Message": exc.message})
                continue
            del queue.messages[message.message_id]
            successful.append({"Id": entry["Id"]})
        return {"Successful": successful, "Failed": failed}

    def change(self, queue: Queue, receipt: str, seconds: int) -> None:
        message = self.find(queue, receipt)
        now = time.monotonic()
        if seconds == 0:
            message.receipt = None
            message.visible_at = now
            queue.ready.append(message.message_id)
        else:
            queue.hide(message, seconds, now)

    async def op_ChangeMessageVisibility(self, body: dict[str, Any]) -> dict[str, Any]:
        self.change(self.queue(body), body["ReceiptHandle"], int(body["VisibilityTimeout"]))
        return {}

    async def op_ChangeMessageVisibilityBatch(self, body: dict[str, Any]) -> dict[str, Any]:
        queue = self.queue(body)
        successful, failed = [], []
        for entry in body["Entries"]:
            try:
                self.change(queue, entry["ReceiptHandle"], int(entry.get("VisibilityTimeout", 0)))
            except SqsError as exc:
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": exc.code, "Message": exc.message})
                continue
            successful.append({"Id": entry["Id"]})
        return {"Successful": successful, "Failed": failed}


class SqsError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args()
    simulator = Simulator(f"http://127.0.0.1:{args.port}", args.delay)
    app = web.Application(client_max_size=1024**2)
    app.router.add_post("/", simulator.handle)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
