"""An OpenAI-style chat client in plain python (urllib.request over ssl, stdlib only).

usage: llm_client.py PORT CAFILE chat|stream|error|big

Sends the same requests as llm_openai_client.js (same prompt, sampling parameters and
bearer key) to https://localhost:PORT/v1/chat/completions, one connection per request:
  chat    non-streaming, prints id, model, finish reason and usage
  stream  "stream": true with include_usage, reads the SSE body line by line to [DONE]
  error   model "rate-limited-model", expects 429 and prints the error code
  big     as chat, but a 40 KB user message comes before "model" in the JSON (as the
          openai python SDK orders a body), and model "gpt-4o-big" gets a 40 KB answer
Exits 0 when the call went as expected, 1 otherwise. Bounded: 10 s per request.
"""
import json
import ssl
import sys
import urllib.error
import urllib.request

API_KEY = "sk-kspan-test-SECRET-0123456789"
PROMPT = "PROMPT-SECRET-kspan-7f3a"
SCENARIOS = ("chat", "stream", "error", "big")


def post(port, ctx, body):
    req = urllib.request.Request(
        "https://localhost:%d/v1/chat/completions" % port,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer " + API_KEY},
        method="POST",
    )
    return urllib.request.urlopen(req, context=ctx, timeout=10)


def usage(u):
    return "%d/%d/%d" % (u["prompt_tokens"], u["completion_tokens"], u["total_tokens"]) if u else "none"


def chat_body(big=False):
    """The chat request every python LLM client here sends (llm_h2_client.py too). big: messages
    first, so the model and parameters come 40 KB into the body."""
    if big:
        return {"messages": [{"role": "user", "content": "context " * 5000 + PROMPT}], "model": "gpt-4o-big",
                "temperature": 0.2, "max_tokens": 64, "top_p": 0.9}
    return {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are a test fixture."},
            {"role": "user", "content": "Say hello. " + PROMPT},
        ],
        "temperature": 0.2,
        "max_tokens": 64,
        "top_p": 0.9,
    }


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in SCENARIOS:
        sys.exit("usage: llm_client.py PORT CAFILE " + "|".join(SCENARIOS))
    port, cafile, scenario = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    ctx = ssl.create_default_context(cafile=cafile)
    body = chat_body(big=scenario == "big")
    if scenario == "big":
        scenario = "chat"

    if scenario == "chat":
        with post(port, ctx, body) as resp:
            r = json.load(resp)
        print("chat status=%d id=%s model=%s finish=%s usage=%s text=%s" % (
            resp.status, r["id"], r["model"], r["choices"][0]["finish_reason"], usage(r["usage"]),
            json.dumps(r["choices"][0]["message"]["content"])), flush=True)

    elif scenario == "stream":
        body.update(stream=True, stream_options={"include_usage": True})
        chunks, text, finish, last, done = 0, "", None, None, False
        with post(port, ctx, body) as resp:
            for line in resp:  # http.client undoes the chunked encoding; SSE is line-based
                line = line.decode().strip()
                if not line.startswith("data:"):
                    continue
                data = line[len("data:"):].strip()
                if data == "[DONE]":
                    done = True
                    continue
                c = json.loads(data)
                chunks += 1
                last = c
                for choice in c["choices"]:
                    text += choice["delta"].get("content") or ""
                    finish = choice["finish_reason"] or finish
        if not done:
            sys.exit("stream ended without [DONE]")
        print("stream status=%d id=%s model=%s chunks=%d finish=%s usage=%s text=%s" % (
            resp.status, last["id"], last["model"], chunks, finish, usage(last.get("usage")),
            json.dumps(text)), flush=True)

    else:
        body["model"] = "rate-limited-model"
        try:
            post(port, ctx, body).close()
        except urllib.error.HTTPError as e:
            err = json.load(e)["error"]
            e.close()
            if e.code != 429:
                raise
            print("error status=%d code=%s type=%s" % (e.code, err["code"], err["type"]), flush=True)
            return
        sys.exit("expected a 429 from rate-limited-model, got a success")


if __name__ == "__main__":
    main()
