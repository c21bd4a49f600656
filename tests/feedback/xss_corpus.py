"""XSS payloads for the real-browser drill (tests/feedback/test_xss_browser.py).

Each payload, if the browser ever ran it, calls ``__xss(N)`` with its own number; ``N`` is replaced by
``payload(i)``. Each fits in a username (150 characters).
"""

from __future__ import annotations

TEMPLATES = [
    # script tags, plain and breaking out of the elements the pages wrap text in
    "<script>__xss(N)</script>",
    "<SCRIPT>__xss(N)</SCRIPT>",
    "</pre><script>__xss(N)</script>",
    "</code></pre><script>__xss(N)</script>",
    "</textarea><script>__xss(N)</script>",
    "</title><script>__xss(N)</script>",
    "</script><script>__xss(N)</script>",
    "</style><script>__xss(N)</script>",
    "<scr<script>ipt>__xss(N)</scr</script>ipt>",
    '<script src="data:text/javascript,__xss(N)"></script>',
    "<svg><script>__xss(N)</script></svg>",
    "<template><script>__xss(N)</script></template>",
    # event handlers
    "<img src=x onerror=__xss(N)>",
    '<img src="x" onerror="__xss(N)">',
    "<img src=x onerror=&#95;&#95;xss(N)>",
    "<svg onload=__xss(N)>",
    "<svg><animate onbegin=__xss(N) attributeName=x dur=1s>",
    "<body onload=__xss(N)>",
    "<input autofocus onfocus=__xss(N)>",
    "<details open ontoggle=__xss(N)>",
    "<audio src=x onerror=__xss(N)>",
    "<video><source onerror=__xss(N)></video>",
    "<marquee onstart=__xss(N)>x</marquee>",
    "<math><mtext></p><img src=x onerror=__xss(N)></mtext></math>",
    '<!--<img src="--><img src=x onerror=__xss(N)//">',
    '<noscript><p title="</noscript><img src=x onerror=__xss(N)>">',
    # breaking out of attributes
    '"><img src=x onerror=__xss(N)>',
    "'><img src=x onerror=__xss(N)>",
    '" autofocus onfocus="__xss(N)" x="',
    "' autofocus onfocus='__xss(N)' x='",
    # javascript: URLs and frames
    '<a href="javascript:__xss(N)">x</a>',
    '<a href="jav&#x09;ascript:__xss(N)">x</a>',
    "javascript:__xss(N)",
    '<iframe src="javascript:parent.__xss(N)"></iframe>',
    '<iframe srcdoc="<script>parent.__xss(N)</script>"></iframe>',
    '<iframe srcdoc="&lt;img src=x onerror=parent.__xss(N)&gt;"></iframe>',
    '<object data="javascript:__xss(N)"></object>',
    '<embed src="javascript:__xss(N)">',
    '<meta http-equiv="refresh" content="0;url=javascript:__xss(N)">',
    '<base href="javascript:__xss(N)//">',
    '<form><button formaction="javascript:__xss(N)">x</button></form>',
    # template syntax (Django, Jinja, Angular-style, JS template literals)
    "{{ __xss(N) }} {% csrf_token %} {# N #}",
    "{% if 1 %}<script>__xss(N)</script>{% endif %}",
    "{{constructor.constructor('__xss(N)')()}}",
    "${__xss(N)}",
    # CSS injection
    "<style>body{background:url(/xss-N)}</style>",
    '<div style="background:url(/xss-N)">x</div>',
    '<link rel="stylesheet" href="/xss-N.css">',
    # encoded and unicode variants
    "&lt;script&gt;__xss(N)&lt;/script&gt;",
    "%3Cscript%3E__xss(N)%3C%2Fscript%3E",
    "\\u003cscript\\u003e__xss(N)\\u003c/script\\u003e",
    "\\x3cscript\\x3e__xss(N)\\x3c/script\\x3e",
    "\uff1cscript\uff1e__xss(N)\uff1c/script\uff1e",
    "\u2028\u2029<script>__xss(N)</script>",
    "<im\u200bg src=x onerror=__xss(N)>",
]


def payload(i: int) -> str:
    return TEMPLATES[i].replace("N", str(i))


PAYLOADS = [payload(i) for i in range(len(TEMPLATES))]
