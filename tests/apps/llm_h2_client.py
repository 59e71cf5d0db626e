"""An OpenAI-style chat client over HTTP/2 (httpx with h2, as the openai python SDK can be
configured: httpx.Client(http2=True)), through Python's ssl (libssl).

usage: /usr/bin/python3 llm_h2_client.py PORT CAFILE chat|stream|big

All requests go on one HTTP/2 connection to https://localhost:PORT/v1/chat/completions:
  chat    non-streaming, prints the protocol version, id, model and usage
  stream  "stream": true with include_usage, reads the SSE body to [DONE]
  big     a 40 KB user message before "model" (as the openai python SDK orders a body),
          model "gpt-4o-big" gets a 40 KB answer whose usage lies far past its start
Exits 0 when every call went as expected over HTTP/2, 1 otherwise. Bounded: 10 s per
request.
"""
import json
import sys

import httpx

from llm_client import API_KEY, chat_body

SCENARIOS = ("chat", "stream", "big")


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in SCENARIOS:
        sys.exit("usage: llm_h2_client.py PORT CAFILE " + "|".join(SCENARIOS))
    port, cafile, scenario = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    body = chat_body(big=scenario == "big")
    if scenario == "stream":
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    url = "https://localhost:%d/v1/chat/completions" % port
    headers = {"Authorization": "Bearer " + API_KEY}
    with httpx.Client(http2=True, verify=cafile, timeout=10) as client:
        if scenario != "stream":
            r = client.post(url, json=body, headers=headers)
            d = r.json()
            print(r.http_version, r.status_code, d["id"], d["model"], d["usage"]["total_tokens"])
            return 0 if r.http_version == "HTTP/2" and r.status_code == 200 else 1
        usage = None
        with client.stream("POST", url, json=body, headers=headers) as r:
            text = "".join(r.iter_text())  # httpx 0.23's iter_lines splits lines at chunk ends
        for line in text.splitlines():
            if line.startswith("data: ") and line != "data: [DONE]":
                usage = json.loads(line[6:]).get("usage") or usage
        print(r.http_version, r.status_code, "usage", usage)
        return 0 if r.http_version == "HTTP/2" and r.status_code == 200 and usage else 1


if __name__ == "__main__":
    sys.exit(main())
