"""Checks arwkv serve with the official openai client: models, completions, chat, streamed chat.

Usage: openai_client.py BASE_URL   (e.g. http://127.0.0.1:8080/v1)
Exits non-zero on the first failed check.
"""
import sys

from openai import OpenAI


def main() -> None:
    client = OpenAI(base_url=sys.argv[1], api_key="unused")
    model = client.models.list().data[0].id
    print(f"model: {model}")

    c = client.completions.create(model=model, prompt="The capital of France is", max_tokens=8, temperature=0)
    print(f"completion: {c.choices[0].text!r} ({c.usage.completion_tokens} tokens, {c.choices[0].finish_reason})")
    assert "Paris" in c.choices[0].text

    messages = [{"role": "system", "content": "You are a concise assistant."},
                {"role": "user", "content": "What is the capital of Italy?"}]
    chat = client.chat.completions.create(model=model, messages=messages, max_tokens=24, temperature=0)
    whole = chat.choices[0].message.content
    print(f"chat: {whole!r} ({chat.choices[0].finish_reason}, usage {chat.usage.prompt_tokens}+{chat.usage.completion_tokens})")
    assert chat.choices[0].message.role == "assistant" and "Rome" in whole

    pieces = []
    finish = None
    stream = client.chat.completions.create(model=model, messages=messages, max_tokens=24, temperature=0, stream=True)
    for chunk in stream:
        delta = chunk.choices[0].delta
        if delta.content:
            pieces.append(delta.content)
        finish = chunk.choices[0].finish_reason or finish
    print(f"streamed chat: {len(pieces)} chunks, finish {finish}")
    assert "".join(pieces) == whole, ("".join(pieces), whole)
    assert finish in ("stop", "length")

    stop = client.completions.create(model=model, prompt="1, 2, 3, 4,", max_tokens=20, temperature=0, stop=[" 7"])
    print(f"stop: {stop.choices[0].text!r} ({stop.choices[0].finish_reason})")
    assert " 7" not in stop.choices[0].text

    try:
        client.completions.create(model="no-such-model", prompt="hi", max_tokens=1)
        raise AssertionError("an unknown model was accepted")
    except Exception as e:  # openai.NotFoundError
        print(f"unknown model refused: {type(e).__name__}")
    print("openai client: all checks passed")


if __name__ == "__main__":
    main()
