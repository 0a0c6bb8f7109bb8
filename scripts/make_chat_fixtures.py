#!/usr/bin/env python3
"""Reference renderings for plumb-nn's chat template tests (tests/chat_templates.rs), from
transformers' own renderer.

Each template below is rendered with `transformers.utils.chat_template_utils.render_jinja_template`
(what `tokenizer.apply_chat_template(..., tokenize=False)` calls: Jinja2 with trim_blocks,
lstrip_blocks, loopcontrols, raise_exception, strftime_now and transformers' tojson), given the
special tokens the model's tokenizer has, as apply_chat_template passes them (bos_token,
eos_token, ... as strings). Every conversation is rendered with add_generation_prompt false and
true; a conversation the template rejects (raise_exception, or any other Jinja error) is stored
with the exception's message instead of a string.

The templates (the hub is not reachable where this runs, so they are carried here as test data,
written out from the models' published tokenizer_config.json `chat_template`):

- smollm2           read from target/models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
                    (`tokenizer.chat_template`, bos/eos from its token ids), the model the CLI
                    tests run
- llama3            meta-llama/Meta-Llama-3-8B-Instruct
- llama3.1          meta-llama/Llama-3.1-8B-Instruct (tools / date_string logic; Llama 3.1 and
                    3.3 Instruct publish the same text, cross-checked against llama.cpp's
                    models/templates/meta-llama-Llama-3.3-70B-Instruct.jinja)
- tinyllama         TinyLlama/TinyLlama-1.1B-Chat-v1.0 (Zephyr's template)
- llama2            meta-llama/Llama-2-7b-chat-hf
- mistral-v0.1      mistralai/Mistral-7B-Instruct-v0.1 (its original template, as recorded in
                    text-generation-inference's router tests)
- qwen2.5           Qwen/Qwen2.5-7B-Instruct (tool-calling variant of ChatML)
- gemma2            google/gemma-2-2b-it (llama.cpp's models/templates copy)
- phi3.5            microsoft/Phi-3.5-mini-instruct (llama.cpp's models/templates copy)
- probe             not a model's: exercises what the others don't (tojson with indent, sort_keys
                    and non-ASCII text, Python string methods, loop controls, namespace, whitespace
                    control around blocks)
- probe-docs        not a model's: renders `documents` and `tools` as retrieval templates do

Every template also renders two tool-calling conversations (a question; then the assistant's
`tool_calls` and the `tool` answer) with `tools` (two function schemas), and with `documents`
too, as apply_chat_template(tools=..., documents=...) passes them.

Writes crates/plumb-nn/tests/fixtures/chat_templates.json:
  {"how", "versions", "templates": [{"name", "source", "template", "special_tokens"}],
   "cases": [{"template", "messages", "add_generation_prompt", "expected" | "error"}]}

Rerun:  /tmp/peers-venv/bin/python scripts/make_chat_fixtures.py
        (any venv with transformers >= 5 and jinja2 >= 3.1.6; needs target/models from
        scripts/fetch_models.sh, or PLUMB_MODELS)
"""
import json
import os
import struct
import sys
from importlib.metadata import version
from pathlib import Path

from transformers.utils.chat_template_utils import render_jinja_template

ROOT = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("PLUMB_MODELS") or ROOT / "target" / "models")
SMOL_GGUF = MODELS / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = ROOT / "crates" / "plumb-nn" / "tests" / "fixtures" / "chat_templates.json"


def gguf_metadata(path, wanted):
    """The metadata values of `wanted` keys of a GGUF file (a minimal reader: header + KVs)."""
    f = open(path, "rb")
    assert f.read(4) == b"GGUF", path
    (ver,) = struct.unpack("<I", f.read(4))
    assert ver >= 2, ver
    _n_tensors, n_kv = struct.unpack("<QQ", f.read(16))
    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def string():
        (n,) = struct.unpack("<Q", f.read(8))
        return f.read(n).decode("utf-8")

    def value(t):
        if t in scalar:
            fmt = "<" + scalar[t]
            return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
        if t == 8:
            return string()
        if t == 9:
            (it,) = struct.unpack("<I", f.read(4))
            (n,) = struct.unpack("<Q", f.read(8))
            return [value(it) for _ in range(n)]
        raise ValueError(f"GGUF value type {t}")

    out = {}
    for _ in range(n_kv):
        key = string()
        (t,) = struct.unpack("<I", f.read(4))
        v = value(t)
        if key in wanted:
            out[key] = v
    return out


def smollm2():
    m = gguf_metadata(
        SMOL_GGUF,
        {
            "tokenizer.chat_template",
            "tokenizer.ggml.tokens",
            "tokenizer.ggml.bos_token_id",
            "tokenizer.ggml.eos_token_id",
            "tokenizer.ggml.unknown_token_id",
            "tokenizer.ggml.padding_token_id",
        },
    )
    toks = m["tokenizer.ggml.tokens"]
    special = {}
    for name, key in [
        ("bos_token", "tokenizer.ggml.bos_token_id"),
        ("eos_token", "tokenizer.ggml.eos_token_id"),
        ("unk_token", "tokenizer.ggml.unknown_token_id"),
        ("pad_token", "tokenizer.ggml.padding_token_id"),
    ]:
        if key in m:
            special[name] = toks[m[key]]
    return m["tokenizer.chat_template"], special


LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim "
    "+ '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

LLAMA31 = r"""{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}"""

TINYLLAMA = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n"
    "{{ '<|user|>\\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n{{ '<|system|>\\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n"
    "{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n"
    "{% endfor %}"
)

LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}"
    "{% endif %}{% endfor %}"
)

MISTRAL01 = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}"
    "{% endfor %}"
)

QWEN25 = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}"""

GEMMA2 = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)

PHI35 = (
    "{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}"
    "{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}"
    "{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}"
    "{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)

# Not a model's template: the Jinja features the templates above leave out.
PROBE = """{%- set ns = namespace(users=0) %}
{%- for m in messages %}
    {%- if m.role == 'user' %}{% set ns.users = ns.users + 1 %}{% endif %}
{%- endfor %}
<users>{{ ns.users }}</users>
{% for m in messages %}
    {% if m.role == 'system' %}
        {% continue %}
    {% endif %}
  [{{ loop.index }}/{{ loop.length }}] {{ m.role.title() }}{{ ':' if m.content.startswith(' ') else '>' }} {{ m.content.strip() | upper }}
    {% if m.content.endswith('?') %}(question){% endif %}
    {% if loop.index >= 3 %}
        {% break %}
    {% endif %}
{% endfor %}
{{ messages | tojson }}
{{ messages[0] | tojson(indent=2, sort_keys=true) }}
{{ {"ok": true, "n": none, "x": [1, 2.5, "\u00e9\\"\\n"]} | tojson(separators=[",", ":"]) }}
{{ messages | map(attribute='role') | reject('equalto', 'system') | join(',') }} {{ messages | length }}
{%- if add_generation_prompt %}
<gen>{{ bos_token ~ '|' ~ eos_token }}
{%- endif %}
"""

# not a model's: renders documents and tools as retrieval / tool templates do (Command-R style)
PROBE_DOCS = """{%- if documents %}<docs>{% for d in documents %}
[{{ loop.index }}] {{ d.title }}: {{ d.text }}{% endfor %}
</docs>{% endif %}
{%- if tools %}<tools>{{ tools | map(attribute='function') | map(attribute='name') | join(',') }}</tools>{% endif %}
{%- for m in messages %}<{{ m.role }}>{{ m.content }}{% if m.tool_calls %}{{ m.tool_calls[0].function | tojson }}{% endif %}</{{ m.role }}>{% endfor %}
{%- if add_generation_prompt %}<assistant>{% endif %}"""

TEMPLATES = [
    ("llama3", "meta-llama/Meta-Llama-3-8B-Instruct", LLAMA3,
     {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}),
    ("llama3.1", "meta-llama/Llama-3.1-8B-Instruct", LLAMA31,
     {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}),
    ("tinyllama", "TinyLlama/TinyLlama-1.1B-Chat-v1.0", TINYLLAMA,
     {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "</s>"}),
    ("llama2", "meta-llama/Llama-2-7b-chat-hf", LLAMA2,
     {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}),
    ("mistral-v0.1", "mistralai/Mistral-7B-Instruct-v0.1", MISTRAL01,
     {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}),
    ("qwen2.5", "Qwen/Qwen2.5-7B-Instruct", QWEN25,
     {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}),
    ("gemma2", "google/gemma-2-2b-it", GEMMA2,
     {"bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>", "pad_token": "<pad>"}),
    ("phi3.5", "microsoft/Phi-3.5-mini-instruct", PHI35,
     {"bos_token": "<s>", "eos_token": "<|endoftext|>", "unk_token": "<unk>", "pad_token": "<|endoftext|>"}),
    ("probe", "plumb (not a model's template)", PROBE, {"bos_token": "<s>", "eos_token": "</s>"}),
    ("probe-docs", "plumb (not a model's template)", PROBE_DOCS, {}),
]

CONVERSATIONS = [
    [{"role": "user", "content": "Hello! How are you?"}],
    [
        {"role": "system", "content": "You are a pirate. Answer briefly."},
        {"role": "user", "content": "What is 2+2?"},
    ],
    [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "  Hello there.  "},
        {"role": "user", "content": "Tell me a joke about \"quotes\" and 'apostrophes'.\n"},
    ],
    [
        {"role": "system", "content": "  Be terse.\n"},
        {"role": "user", "content": "Grüße — 你好 🤖?"},
        {"role": "assistant", "content": "¡Hola!"},
        {"role": "user", "content": " line one\nline two "},
    ],
    # non-alternating roles: Llama-2, Mistral and Gemma reject it
    [
        {"role": "user", "content": "first"},
        {"role": "user", "content": "second"},
    ],
]


# tool calling, as transformers takes it: function schemas in `tools`, an assistant turn with
# `tool_calls` (arguments as a dict), the tool's answer as a `tool` message; and `documents` for
# retrieval templates. Rendered with every template (those without tool support ignore the
# extra fields or reject the roles, as in transformers).
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "The city, e.g. Paris"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two numbers.",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                "required": ["a", "b"],
            },
        },
    },
]
DOCUMENTS = [
    {"title": "Paris", "text": "Paris is the capital of France."},
    {"title": "Météo", "text": "Il fait 22 °C."},
]
TOOL_CONVERSATIONS = [
    [{"role": "user", "content": "What's the weather in Paris?"}],
    [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": "What's the weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}
            ],
        },
        {"role": "tool", "name": "get_weather", "content": "22 degrees, sunny"},
    ],
]


def render(template, special, messages, add_generation_prompt, tools=None, documents=None):
    try:
        out, _ = render_jinja_template(
            conversations=[messages],
            tools=tools,
            documents=documents,
            chat_template=template,
            add_generation_prompt=add_generation_prompt,
            **special,
        )
        return {"expected": out[0]}
    except Exception as e:  # the template rejected the conversation
        return {"error": str(e), "error_type": type(e).__name__}


def main():
    if not SMOL_GGUF.exists():
        sys.exit(f"{SMOL_GGUF} is missing: run scripts/fetch_models.sh (or set PLUMB_MODELS)")
    smol_template, smol_special = smollm2()
    src = "HuggingFaceTB/SmolLM2-135M-Instruct: tokenizer.chat_template of " + SMOL_GGUF.name
    templates = [("smollm2", src, smol_template, smol_special)]
    templates += TEMPLATES
    fixture = {
        "how": "transformers.utils.chat_template_utils.render_jinja_template(conversations=[messages], "
        "chat_template=template, add_generation_prompt=..., **special_tokens), as "
        "apply_chat_template(tokenize=False) calls it; an exception is stored as 'error'",
        "versions": {p: version(p) for p in ("transformers", "jinja2")},
        "templates": [
            {"name": n, "source": src, "template": t, "special_tokens": sp}
            for n, src, t, sp in templates
        ],
        "cases": [],
    }
    errors = 0
    for name, _, template, special in templates:
        for messages in CONVERSATIONS:
            for gen in (False, True):
                case = {"template": name, "messages": messages, "add_generation_prompt": gen}
                case.update(render(template, special, messages, gen))
                errors += "error" in case
                fixture["cases"].append(case)
        for messages in TOOL_CONVERSATIONS:
            for extra in ({"tools": TOOLS}, {"tools": TOOLS, "documents": DOCUMENTS}):
                case = {"template": name, "messages": messages, "add_generation_prompt": True} | extra
                case.update(render(template, special, messages, True, **extra))
                errors += "error" in case
                fixture["cases"].append(case)
    OUT.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {len(templates)} templates, {len(fixture['cases'])} cases, {errors} errors")


if __name__ == "__main__":
    main()
