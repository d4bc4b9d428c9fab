"""The COCO caption evaluation's tokenisation, in Python: what coco-caption does before CIDEr-D, METEOR and
ROUGE-L, without starting Java.

coco-caption (and ``pycocoevalcap``) runs Stanford CoreNLP 3.4.1's ``PTBTokenizer -preserveLines
-lowerCase`` on every caption, then drops the tokens in :data:`PUNCTUATIONS`. This module gives the same
tokens for caption text: words, numbers (``3.5``, ``5,000``, ``10:30``, ``1/2``), hyphenated words
(``black-and-white``), clitics split off (``man 's``, ``do n't``, ``ca n't``, ``gon na``), abbreviations
that keep their period (``st.``, ``a.m.``, ``u.s.``), symbols as their own tokens (``&``, ``%``, ``#``,
``$``, ``+``, ``=``) and brackets as ``-lrb-``/``-rrb-``/``-lsb-``/... Two quirks are kept, since
equivalence is the point: the bracket tokens are lower case after ``-lowerCase``, so coco-caption's list
(upper case ``-LRB-``) does not remove them and they are scored; and a run of marks (``!!``, ``?!``) is one
token, not in the list, so it is scored too.

Why not nltk's Treebank tokenizer: it splits a period only at the end of the text ("a man. a dog" keeps
"man."), keeps "(" rather than "-lrb-", and does not split "gonna"; each changes CIDEr-D's n-grams.
Not covered (the reference treats them by rules no caption needs): URLs, e-mail addresses, hashtags and
@-mentions, emoticons.
``tests/test_ptb_caption_tokenizer.py`` checks this against the reference tokenizer's output on fixtures,
and against the Java tokenizer itself where Java and ``pycocoevalcap`` are present.
"""

from __future__ import annotations

import re

#: the tokens coco-caption drops after PTB tokenisation (its ``ptbtokenizer.PUNCTUATIONS``)
PUNCTUATIONS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)

_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}

#: abbreviations the PTB lexer keeps with their period (the ones captions use)
_ABBREVIATIONS = (
    "mr|mrs|ms|dr|prof|st|ft|mt|ave|blvd|rd|jr|sr|etc|vs|no|inc|co|corp|ltd|dept|gen|gov|sen|rep|capt|sgt|"
    "lt|col|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|approx|est|fig|mph|oz|lb|lbs"
)

#: words the PTB lexer splits in two (``gonna`` -> ``gon na``)
_SPLIT_WORDS = {
    "cannot": ("can", "not"),
    "gonna": ("gon", "na"),
    "gotta": ("got", "ta"),
    "wanna": ("wan", "na"),
    "lemme": ("lem", "me"),
    "gimme": ("gim", "me"),
    "'tis": ("'t", "is"),
    "'twas": ("'t", "was"),
    "y'all": ("y'", "all"),
}

_LETTER = r"[^\W_]"
_TOKEN = re.compile(
    rf"""
    (?P<ellipsis>\.\.\.+|\u2026)
  | (?P<dashes>--+)
  | (?P<marks>[!?]+)
  | (?P<abbreviation>(?<!{_LETTER})(?:(?:{_LETTER}\.){{2,}}|(?:{_ABBREVIATIONS})\.(?!{_LETTER})))
  | (?P<rock>'n')
  | (?P<apostrophe_word>'(?:\d\ds|til|tis|twas|em|cause|n)(?!{_LETTER}))
  | (?P<quote_pair>``|'')
  | (?P<word>{_LETTER}+(?:(?:[-./:@&]|(?<=[^\W\d_])'(?=[^\W\d_])|(?<=\d),(?=\d)){_LETTER}+)*)
  | (?P<double_quote>")
  | (?P<other>\S)
    """,
    re.VERBOSE,
)
_CLITIC = re.compile(r"(?i)^(.+?)(n't|'s|'m|'d|'ll|'re|'ve)$")


def _split_word(word: str) -> list[str]:
    """A word's clitics split off as the PTB lexer does (``don't`` -> ``do n't``)."""
    if word in _SPLIT_WORDS:
        return list(_SPLIT_WORDS[word])
    if "'n'" in word:  # rock'n'roll -> rock 'n' roll
        head, _, tail = word.partition("'n'")
        return [*_split_word(head), "'n'", *_split_word(tail)]
    match = _CLITIC.match(word)
    if match and match.group(1) not in ("", "n"):
        return [match.group(1), match.group(2)]
    return [word]


def ptb_tokens(text: str) -> list[str]:
    """All PTB tokens of one caption, lower case, punctuation still in (what the reference prints)."""
    tokens: list[str] = []
    for match in _TOKEN.finditer(text.lower().replace("\n", " ")):
        kind, token = match.lastgroup, match.group()
        # a quote after a token closes ('', '), one after a space or at the start opens (``, `)
        closes = match.start() > 0 and not text[match.start() - 1].isspace()
        if kind in ("word", "apostrophe_word"):
            tokens += _split_word(token)
        elif kind == "double_quote":
            tokens.append("''" if closes else "``")
        elif kind == "other" and token in _BRACKETS:
            tokens.append(_BRACKETS[token])
        elif kind == "other" and token == "'":
            tokens.append("'" if closes else "`")
        elif kind == "ellipsis":
            tokens.append("...")
        else:
            tokens.append(token)
    return tokens


def tokenize_caption(text: str) -> list[str]:
    """One caption as coco-caption scores it: PTB tokens, lower case, punctuation removed."""
    return [token for token in ptb_tokens(text) if token not in PUNCTUATIONS]
