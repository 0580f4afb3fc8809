"""instructor's request preparation and answer parsing, done once per run.

Called the usual way (``client.chat.completions.create(response_model=...)``)
instructor re-prepares the response model for every request: it builds a new
schema class, walks the model for async validators, regenerates the JSON
schema, and the SDK then walks the whole request (schema included) to
transform it. For thousands of requests that is most of the client's CPU
(see benchmarks/). ``PreparedRequest`` does instructor's preparation once,
with instructor's own handlers, and per request only drops the text into the
prepared body; answers are parsed and re-asked by instructor's handlers for
the mode, so the validated objects are the same as instructor's.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

import instructor
from instructor.processing.response import handle_response_model
from instructor.v2.core.providers import Provider
from instructor.v2.core.registry import mode_registry
from pydantic import BaseModel

from core.tokens import estimate_tokens

_PLACEHOLDER = "\x00fanout-record-text\x00"
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_FENCED = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)

MIN_MAX_TOKENS = 256
"""The smallest ``max_tokens`` fanout derives from a schema."""


def answer_estimate(schema: type[BaseModel]) -> int:
    """Tokens an answer for the schema is expected to take (about half its JSON schema)."""
    return max(16, estimate_tokens(json.dumps(schema.model_json_schema())) // 2)


def default_max_tokens(schema: type[BaseModel]) -> int:
    """A bound on a generation, so a model that never stops cannot run to the timeout:
    eight times the expected answer, at least ``MIN_MAX_TOKENS``."""
    return max(MIN_MAX_TOKENS, 8 * answer_estimate(schema))


def _parse_errors() -> tuple[type[Exception], ...]:
    from instructor.core.exceptions import ResponseParsingError
    from instructor.core.exceptions import ValidationError as InstructorValidationError
    from pydantic import ValidationError

    return (ValidationError, InstructorValidationError, ResponseParsingError, json.JSONDecodeError)


class PreparedRequest:
    """The chat request for one schema and mode, ready to take a record's text."""

    def __init__(
        self,
        schema: type[BaseModel],
        mode: instructor.Mode,
        model: str,
        system_prompt: str | None = None,
        *,
        max_tokens: int | None = None,
        max_tokens_field: str = "max_tokens",
        lenient: bool = False,
    ) -> None:
        self.schema = schema
        self.mode = mode
        self.model = model
        self.max_tokens = max_tokens
        """Sent as the request's ``max_tokens`` (None: not sent)."""
        self.lenient = lenient
        """Whether an answer instructor rejects gets ``parse_lenient``'s second look."""
        messages: list[dict[str, Any]] = [{"role": "user", "content": _PLACEHOLDER}]
        if system_prompt:
            messages.insert(0, {"role": "system", "content": system_prompt})
        prepared, kwargs = handle_response_model(schema, mode=mode, messages=messages)
        assert prepared is not None
        self.response_model: type[BaseModel] = prepared
        self._template: dict[str, Any] = {**kwargs, "model": model}
        if max_tokens is not None:
            # OpenAI's newer models refuse ``max_tokens`` (they take max_completion_tokens);
            # OpenAI-compatible servers (vLLM, Ollama, llama.cpp) know ``max_tokens``.
            self._template[max_tokens_field] = max_tokens
        self._template_messages: list[dict[str, Any]] = list(kwargs.get("messages", messages))
        # instructor may wrap the text (MD_JSON appends an instruction), so the
        # text goes wherever the placeholder ended up, inside whatever surrounds it.
        self._text_at = [
            i
            for i, m in enumerate(self._template_messages)
            if isinstance(m.get("content"), str) and _PLACEHOLDER in m["content"]
        ]
        if not self._text_at:
            raise RuntimeError(f"instructor's {mode} request has no place for the text")
        self._handlers = mode_registry.get_handlers(Provider.OPENAI, mode)
        self.parse_errors = _parse_errors()
        template = json.dumps(kwargs).replace(_PLACEHOLDER, "")
        self._fixed_tokens = estimate_tokens(template) + 4 * len(self._template_messages)

    def body(self, text: str) -> dict[str, Any]:
        """The request body for one text (a fresh dict: re-asks may change it)."""
        messages = list(self._template_messages)
        for i in self._text_at:
            message = messages[i]
            messages[i] = {**message, "content": message["content"].replace(_PLACEHOLDER, text)}
        return {**self._template, "messages": messages}

    def prompt_tokens(self, text: str) -> int:
        """Estimated prompt tokens of ``body(text)``, without building it."""
        return self._fixed_tokens + estimate_tokens(text) * len(self._text_at)

    def parse(self, completion: Any) -> BaseModel:
        """Validate an answer into the schema, as instructor would (strict, like create())."""
        parsed = self._handlers.response_parser(
            response=completion,
            response_model=self.response_model,
            validation_context=None,
            strict=True,
            stream=False,
            is_async=False,
        )
        if not isinstance(parsed, BaseModel):
            raise TypeError(f"instructor returned {type(parsed).__name__}, not a model")
        # instructor pins the whole ChatCompletion to the object (``_raw_response``);
        # a run keeps every object, so that would hold every response in memory.
        vars(parsed).pop("_raw_response", None)
        private = getattr(parsed, "__pydantic_private__", None)
        if private:
            private.pop("_raw_response", None)
        return parsed

    def parse_lenient(self, completion: Any) -> BaseModel | None:
        """With ``--lenient``, a second look at an answer instructor rejected: a
        ``<think>…</think>`` preface and a json fence are stripped, and numbers sent as
        strings accepted (pydantic's lax mode). None when off, or when still invalid."""
        if not self.lenient:
            return None
        try:
            message = completion.choices[0].message
            calls = message.tool_calls
            text = calls[0].function.arguments if calls else message.content
            if not isinstance(text, str):
                return None
            text = _THINK.sub("", text)
            fenced = _FENCED.search(text)
            if fenced:
                text = fenced.group(1)
            start, end = text.find("{"), text.rfind("}")
            if start < 0 or end < start:
                return None
            data = json.loads(text[start : end + 1])
            return self.response_model.model_validate(data, strict=False)
        except Exception:  # still not an object for the schema: the strict error stands
            return None

    def reask(self, body: Mapping[str, Any], completion: Any, error: Exception) -> dict[str, Any]:
        """The next body after an invalid answer: instructor's re-ask for the mode."""
        kwargs = copy.copy(dict(body))
        kwargs["messages"] = list(body["messages"])
        result: dict[str, Any] = self._handlers.reask_handler(
            kwargs=kwargs, response=completion, exception=error
        )
        return result
