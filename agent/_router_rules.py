"""`RuleRouter`: routes by the question's words (see agent/_router.py). Its patterns take a tenth
of a second to compile, so this module is imported only when a rule router is made."""

from __future__ import annotations

import regex

from ._router import Route

__all__ = ["RuleRouter"]


def _words(*alternatives: str) -> regex.Pattern[str]:
    return regex.compile(r"(?<!\p{L})(?:" + "|".join(alternatives) + r")(?!\p{L})", regex.I | regex.V1)


_YEAR = r"(?:1[0-9]{3}|20[0-9]{2})"
# a number that is a quantity: digits (not a year standing alone), a clock time, money, a percentage
_QUANTITY = regex.compile(
    r"[$€£]\s?\d|\d+(?:[.,]\d+)?\s?%|\b\d{1,2}:\d{2}\b|(?<![\d.,])(?!" + _YEAR + r"(?![\d.,%]))\d+(?:[.,]\d+)*", regex.V1)
_NUMBER_WORDS = _words(
    "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "fifteen", "twenty",
    "thirty", "forty", "fifty", "hundred", "thousand", "dozen", "half", "twice", "triple", "double", "quarter")
_ARITHMETIC = regex.compile(r"\d\s*(?:[-+*/×÷^x]|\*\*)\s*[-(]?\s*\d|\d\s*[×÷]|(?:sqrt|log|sin|cos)\s*\(", regex.I)
_MATH_WORDS = _words(
    r"how (?:many|much|long|far|fast)", r"what time", "total", "altogether", "in all", "left", "remain(?:s|ing)?",
    "each", "per", "every", "average", "mean", "percent(?:age)?", "discount", "cost(?:s)?", "price", "spend(?:s|t)?",
    "earn(?:s|ed)?", "save(?:s|d)?", "sum", "difference", "product", "quotient", "divided?", "multipl(?:y|ied)",
    "times", "ratio", "rate", "speed", "calculate", "compute", "solve", "evaluate", "simplify", "lcm", "gcd",
    "least common multiple", "greatest common (?:divisor|factor)", "more than", "less than", "fewer", "twice as",
    "remainder", "square root", "round(?:ed)? (?:up|down)", "minimum number", "at least how many", "convert",
    "(?:km|miles?|kilometres?|kilometers?|metres?|meters?|hours?|minutes?|seconds?|kg|grams?|litres?|liters?)",
    "cuántos", "cuánto", "wie viele", "wie viel", "combien", "calcula", "berechne",
    "how old", "ways", "arranged?", "duration", "elapsed", "day of the week", "weekdays?", "business days",
    r"\d+\s?% of", "older", "min", "h", "hrs?", "arrives?", "leaves?", "departs?", "finish(?:es)?", "younger",
    r"from \d+ to \d+", "(?:mon|tues|wednes|thurs|fri|satur|sun)day")
_LOOKUP_START = regex.compile(
    r"^\W*(?:(?:and|so|but|tell me|do you know|please|hey|quick question)[, ]+)*"
    r"(?:who|whom|whose|what|when|where|which|how (?:many|much|tall|old|long|far|big|high|deep|large|did|does|do|is|was)"
    r"|in (?:what|which)|name (?:the|a)|is|was|are|were|did|does|do|has|had"
    r"|quién|qué|cuándo|dónde|cuál|wer|was|wann|wo|welche[rsmn]?|qui|quel(?:le)?s?|quand|où|combien)\b",
    regex.I | regex.V1)
_ADVICE = _words(
    "should i", "any (?:advice|tips|ideas|suggestions)", "what are some", "ways to", "good name", "who are you",
    "what do you think", "your (?:favou?rite|opinion)", "pros and cons", r"mean\?", "meaning of", "difference between",
    "better to", "recommend", "when should", "how (?:do|can|should) (?:i|you|we)", "is it (?:ok|okay|bad|good)")
_TASK = _words(
    "write", "rewrite", "translate", "summari[sz]e", "explain", "describe", "draft", "compose", "create",
    "generate", "suggest", "give me", "list", "brainstorm", "recommend", "help me", "fix", "debug", "implement",
    "refactor", "improve", "make", "tell me a", "what should i", "how (?:do|can|should) i", "how to", "can you",
    "could you", "pretend", "imagine", "act as", "proofread", "correct", "paraphrase", "shorten", "rephrase",
    "code", "function", "python", "javascript", "sql", "regex", "script", "class", "program", "poem", "haiku",
    "story", "email", "letter", "joke", "essay", "tweet", "slogan",
    "hi", "hello", "hey", "thanks", "thank you", "good morning", "bye", "schreib", "escribe", "traduce", "écris",
    "traduis", "übersetze", "erkläre", "explica", "explique")
_TASK_START = regex.compile(r"^\W*(?:please\s+|can you\s+|could you\s+)?" + _TASK.pattern, regex.I | regex.V1)
_CALC_START = regex.compile(r"^\W*(?:please\s+)?(?:calculate|compute|solve|evaluate|work out|find the (?:sum|product|value))",
                            regex.I)
_ENTITY = regex.compile(r"(?<=\S\s+)\p{Lu}[\p{L}'’-]+|\b" + _YEAR + r"\b", regex.V1)


class RuleRouter:
    """Routes by the question's words. Order of the rules: a task's imperative start (write,
    translate, explain ...) is direct, unless the question is arithmetic to work out; numbers that
    are quantities with quantity words, or arithmetic, are math; a question form (who, what, when,
    is, did ...) or a named entity is lookup; anything else is direct."""

    def __call__(self, question: str) -> Route:
        q = " ".join(str(question).split())[:2000]
        if not q:
            return "direct"
        quantities = len(_QUANTITY.findall(q))
        arithmetic = bool(_ARITHMETIC.search(q))
        math_words = len(_MATH_WORDS.findall(q))
        numbers = quantities + len(_NUMBER_WORDS.findall(q))
        computed = arithmetic or (quantities >= 1 and math_words >= 1 and numbers >= 2) or (
            quantities >= 1 and math_words >= 2)
        years = len(regex.findall(r"\b" + _YEAR + r"\b", q))
        computed = computed or (years >= 2 and math_words >= 1)
        if _TASK_START.search(q) and not _CALC_START.search(q):
            return "direct"
        if computed:
            return "math"
        if _ADVICE.search(q):
            return "direct"
        if _LOOKUP_START.search(q) or (q.rstrip().endswith("?") and _ENTITY.search(q)):
            return "lookup"
        return "direct"
