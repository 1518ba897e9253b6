"""`tooltoken bench speculative`: speculative decoding against plain greedy decoding on grounded answers.

    >>> bench_speculative(limit=20)                                        # doctest: +SKIP
    {'model': 'qwen2.5-coder-1.5b-instruct-q4_k_m.gguf', 'n': 20, 'tokens_per_s_plain': ...,
     'tokens_per_s_speculative': ..., 'speedup': ..., 'identical_text': True, ...}

Each question makes the model call `lookup` (tool_choice forces it) on a small encyclopedia
embedded below, then answer by restating or quoting what came back: answers copy names, dates
and figures from the inserted result, which is what prompt lookup drafts from.

Two backends of the same GGUF are loaded side by side in one process, one plain and one with
the draft, with the same settings otherwise (a third is described below); each question runs on
each, in rotating order (plain first on the first question). Only answer tokens sampled after
the tool result count:
- tokens_per_s_*: those tokens ÷ the time from the first of them to the end of the answer,
  summed over questions (the decode rate; evaluating the inserted result is excluded, as it is
  the same work on both sides).
- wall_tokens_per_s_*: the same tokens ÷ the time from the tool result to the end of the answer
  (the inserted result's evaluation included; the speculative side computes logits for every
  position, so its evaluation costs a little more).
- identical_text: every answer, and every tool call, was the same on both sides; `differing`
  lists the questions where not.
- acceptance: drafted tokens the model confirmed ÷ drafted tokens (drafts whose fate is known).
- *_default: a third backend, plain with llama.cpp's default settings (repacked weights, F16 KV
  cache), in the same rotation: the speedup against it, and the answers where its text differs
  from the speculative side's (other kernels, other rounding: not a fault of the draft).

Settings: both sides `batch_invariant` (no weight repacking, a Q8_0 KV cache, flash attention:
llama.cpp then computes a draft batch of up to 7 tokens as it computes one token, so the draft
cannot change the text; see tooltoken._backend), and `logits_all=True` on the speculative side
(llama-cpp-python 0.3.36 needs it for a draft model past 512 tokens of context). Nothing is
printed; the CLI prints the dict as JSON.
"""

from __future__ import annotations

import re
import time
from typing import Any

__all__ = ["CORPUS", "QUESTIONS", "bench_speculative", "lookup_text"]

CORPUS: dict[str, str] = {
    "Eiffel Tower": "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It is named after the engineer Gustave Eiffel, whose company designed and built the tower from 1887 to 1889 as the centrepiece of the 1889 World's Fair. It is 330 metres tall and was the tallest man-made structure in the world until the Chrysler Building in New York City was finished in 1930.",
    "Golden Gate Bridge": "The Golden Gate Bridge is a suspension bridge spanning the Golden Gate, the one-mile-wide strait connecting San Francisco Bay and the Pacific Ocean. It opened on May 27, 1937, and its main span of 4,200 feet was the longest in the world until 1964. The chief engineer was Joseph Strauss, and the bridge is painted in a colour called International Orange.",
    "Mount Everest": "Mount Everest is Earth's highest mountain above sea level, located in the Mahalangur Himal sub-range of the Himalayas on the border between Nepal and China. Its elevation of 8,848.86 metres was most recently established in 2020 by Chinese and Nepali authorities. Edmund Hillary and Tenzing Norgay made the first confirmed ascent on 29 May 1953.",
    "Amazon River": "The Amazon River in South America is the largest river by discharge volume of water in the world. It flows for about 6,400 kilometres from the Andes to the Atlantic Ocean, and its basin covers some 7 million square kilometres across nine countries. About one fifth of all the fresh water that flows into the oceans comes from the Amazon.",
    "Hubble Space Telescope": "The Hubble Space Telescope was launched into low Earth orbit on 24 April 1990 aboard the Space Shuttle Discovery. It has a 2.4-metre mirror and observes in the ultraviolet, visible and near-infrared. A flaw in its main mirror was corrected by the first servicing mission in December 1993, and five servicing missions were flown in all, the last in May 2009.",
    "Marie Curie": "Marie Curie was a Polish and naturalised-French physicist and chemist who conducted pioneering research on radioactivity. She was the first woman to win a Nobel Prize, sharing the 1903 Nobel Prize in Physics with Pierre Curie and Henri Becquerel, and she won the 1911 Nobel Prize in Chemistry for the discovery of polonium and radium. She was born in Warsaw on 7 November 1867.",
    "Apollo 11": "Apollo 11 was the American spaceflight that first landed humans on the Moon. Commander Neil Armstrong and lunar module pilot Buzz Aldrin landed the lunar module Eagle on 20 July 1969, while Michael Collins flew the command module Columbia in lunar orbit. Armstrong stepped onto the surface six hours and 39 minutes after landing, and the crew returned to Earth on 24 July.",
    "Panama Canal": "The Panama Canal is an artificial 82-kilometre waterway in Panama that connects the Atlantic Ocean with the Pacific Ocean. The United States took over the project in 1904 and opened the canal on 15 August 1914. Locks at each end lift ships up to Gatun Lake, 26 metres above sea level, and a ship takes about 11 hours to pass through.",
    "Sydney Opera House": "The Sydney Opera House is a multi-venue performing arts centre on Bennelong Point in Sydney Harbour, Australia. It was designed by the Danish architect Jørn Utzon, whose design was chosen in a 1957 international competition, and it was formally opened by Queen Elizabeth II on 20 October 1973. It became a UNESCO World Heritage Site in 2007.",
    "Statue of Liberty": "The Statue of Liberty is a colossal copper statue on Liberty Island in New York Harbor. It was a gift from the people of France to the United States, designed by the sculptor Frédéric Auguste Bartholdi, with a metal framework built by Gustave Eiffel. It was dedicated on October 28, 1886, and from the ground to the tip of the torch it stands 93 metres tall.",
    "Titanic": "RMS Titanic was a British ocean liner operated by the White Star Line that sank in the North Atlantic Ocean on 15 April 1912 after striking an iceberg during her maiden voyage from Southampton to New York City. Of the estimated 2,224 passengers and crew aboard, more than 1,500 died. She was built by Harland and Wolff in Belfast, and her captain was Edward Smith.",
    "Mariana Trench": "The Mariana Trench is an oceanic trench in the western Pacific Ocean, about 200 kilometres east of the Mariana Islands. Its deepest known point, the Challenger Deep, is about 10,935 metres below sea level. Jacques Piccard and Don Walsh first reached the bottom in the bathyscaphe Trieste on 23 January 1960.",
    "Penicillin": "Penicillin was discovered in 1928 by the Scottish physician Alexander Fleming at St Mary's Hospital in London, when he noticed that a mould called Penicillium notatum killed the bacteria around it. Howard Florey and Ernst Chain developed it into a medicine around 1940, and the three men shared the 1945 Nobel Prize in Physiology or Medicine.",
    "Printing press": "Johannes Gutenberg, a goldsmith from Mainz, introduced printing with movable metal type to Europe around 1440. His major work, the Gutenberg Bible, was printed in Mainz in about 1455, in an edition of roughly 180 copies. His hand mould made it possible to cast large numbers of identical letters quickly.",
    "Burj Khalifa": "The Burj Khalifa is a skyscraper in Dubai, United Arab Emirates. With a total height of 828 metres and 163 floors, it has been the tallest building in the world since its opening on 4 January 2010. It was designed by Adrian Smith of the architecture firm Skidmore, Owings & Merrill, and construction began in January 2004.",
    "Lake Baikal": "Lake Baikal is a rift lake in southern Siberia, Russia. It is the deepest lake in the world, with a maximum depth of 1,642 metres, and the largest freshwater lake by volume, holding about 23,615 cubic kilometres, roughly 22 to 23 percent of the fresh surface water on Earth. It is also among the oldest lakes, at 25 to 30 million years.",
    "Suez Canal": "The Suez Canal is an artificial sea-level waterway in Egypt connecting the Mediterranean Sea to the Red Sea through the Isthmus of Suez. It was built by the Suez Canal Company under the French diplomat Ferdinand de Lesseps, and it opened on 17 November 1869 after ten years of work. It is 193 kilometres long.",
    "Colosseum": "The Colosseum is an elliptical amphitheatre in the centre of Rome, Italy. Construction began under the emperor Vespasian in AD 72 and was completed in AD 80 under his son Titus. It could hold an estimated 50,000 to 80,000 spectators, who watched gladiatorial contests, animal hunts and dramas based on classical mythology.",
    "Machu Picchu": "Machu Picchu is a 15th-century Inca citadel on a mountain ridge 2,430 metres above sea level in the Eastern Cordillera of southern Peru. It was most likely built as an estate for the Inca emperor Pachacuti, who reigned from 1438 to 1471. The American explorer Hiram Bingham brought it to international attention in 1911.",
    "Taj Mahal": "The Taj Mahal is an ivory-white marble mausoleum on the right bank of the river Yamuna in Agra, India. It was commissioned in 1631 by the Mughal emperor Shah Jahan to house the tomb of his favourite wife, Mumtaz Mahal. The tomb was finished in 1643, and work on the surrounding buildings and garden continued for about ten more years.",
    "Voyager 1": "Voyager 1 is a space probe launched by NASA on 5 September 1977 to study the outer Solar System. It flew past Jupiter in 1979 and Saturn in 1980, and on 25 August 2012 it became the first spacecraft to enter interstellar space. It carries a golden record with sounds and images of life on Earth.",
    "International Space Station": "The International Space Station is a modular space station in low Earth orbit, run jointly by NASA, Roscosmos, JAXA, ESA and CSA. Its first module, Zarya, was launched on 20 November 1998, and it has been continuously occupied since 2 November 2000. It orbits at about 400 kilometres and circles the Earth about 15.5 times a day.",
    "Channel Tunnel": "The Channel Tunnel is a 50.45-kilometre railway tunnel beneath the English Channel that connects Folkestone in Kent, England, with Coquelles near Calais in France. It opened on 6 May 1994. Its undersea section of 37.9 kilometres is the longest in the world, and the tunnel carries Eurostar passenger trains and Le Shuttle vehicle trains.",
    "Great Wall of China": "The Great Wall of China is a series of fortifications built across the historical northern borders of ancient Chinese states to protect against nomadic groups from the Eurasian Steppe. Most of the existing wall dates from the Ming dynasty, which ruled from 1368 to 1644. A 2012 survey by China's State Administration of Cultural Heritage measured all its branches at 21,196 kilometres.",
}

# (topic, question): the answer must come from the paragraph the lookup returns.
QUESTIONS: list[tuple[str, str]] = [
    ("Eiffel Tower", "Who designed and built the Eiffel Tower, and when? Quote the source's sentence."),
    ("Golden Gate Bridge", "Restate everything the source says about the Golden Gate Bridge's opening, span and engineer."),
    ("Mount Everest", "Quote exactly what the source says about the height of Mount Everest and its first ascent."),
    ("Amazon River", "What does the source say about the length and basin of the Amazon River? Quote it."),
    ("Hubble Space Telescope", "Restate the source's details on the launch and servicing missions of the Hubble Space Telescope."),
    ("Marie Curie", "Quote the source's sentence about Marie Curie's Nobel Prizes."),
    ("Apollo 11", "Who were the Apollo 11 crew and what did each do, according to the source? Quote it."),
    ("Panama Canal", "Restate what the source says about the Panama Canal's opening, locks and passage time."),
    ("Sydney Opera House", "Quote the source on who designed the Sydney Opera House and when it opened."),
    ("Statue of Liberty", "What does the source say about who designed and built the Statue of Liberty? Quote it."),
    ("Titanic", "Quote the source's sentences about the sinking of the Titanic and its casualties."),
    ("Mariana Trench", "Restate the source's facts about the depth of the Mariana Trench and who first reached the bottom."),
    ("Penicillin", "Quote what the source says about how penicillin was discovered."),
    ("Printing press", "Restate the source's details about Gutenberg and the Gutenberg Bible."),
    ("Burj Khalifa", "Quote the source on the height, floors and designer of the Burj Khalifa."),
    ("Lake Baikal", "What does the source say about the depth and volume of Lake Baikal? Quote the figures."),
    ("Suez Canal", "Quote the source's sentence about who built the Suez Canal and when it opened."),
    ("Colosseum", "Restate what the source says about the construction and capacity of the Colosseum."),
    ("Machu Picchu", "Quote the source on where Machu Picchu is and who built it."),
    ("Taj Mahal", "Restate the source's account of why and when the Taj Mahal was built."),
    ("Voyager 1", "Quote what the source says about Voyager 1's launch and its entry into interstellar space."),
    ("International Space Station", "Restate the source's facts about the first module and orbit of the International Space Station."),
    ("Channel Tunnel", "Quote the source on the length and opening date of the Channel Tunnel."),
    ("Great Wall of China", "What does the source say about the Ming dynasty wall and its total length? Quote it."),
]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def lookup_text(topic: str) -> str:
    """The paragraph whose title shares the most words with `topic` (body words break ties)."""
    want = _words(topic)
    best = max(CORPUS, key=lambda t: (len(want & _words(t)), len(want & _words(CORPUS[t]))))
    if not want & _words(best + " " + CORPUS[best]):
        return f"No entry for {topic!r}. Entries: {', '.join(CORPUS)}."
    return f"{best}\n{CORPUS[best]}"


def _lookup_tool() -> Any:
    from tooltoken import tool

    @tool
    def lookup(topic: str) -> str:
        """Look up the encyclopedia entry on a topic (a place, thing, person or event)."""
        return lookup_text(topic)

    return lookup


def _run(agent: Any, question: str) -> dict[str, Any]:
    """One answer through the controller, timed from its tool result to its end."""
    from tooltoken import Final, TextDelta, ToolResult
    from tooltoken._llama_turns import LlamaTurns
    from tooltoken._loop import Answer

    llm = agent.backend.llm
    llm.reset()
    turns = LlamaTurns(agent.backend, agent.fmt, agent.tools, agent.options, agent.render(agent.messages(question)))
    t_result = t_first = None
    n_result = 0
    final = None
    for ev in Answer(turns, agent.tools, agent.options).run():
        now = time.perf_counter()
        if isinstance(ev, ToolResult) and t_result is None:
            t_result, n_result = now, turns._text_tokens
        elif isinstance(ev, TextDelta) and t_result is not None and t_first is None:
            t_first = now
        elif isinstance(ev, Final):
            final = ev
    end = time.perf_counter()
    assert final is not None
    tokens = turns._text_tokens - n_result if t_result is not None else 0
    return {
        "answer": final.answer,
        "calls": [(c.name, c.arguments) for c in final.tool_calls],
        "tokens": tokens,
        "decode_s": end - t_first if t_first is not None else 0.0,
        "wall_s": end - t_result if t_result is not None else 0.0,
        "stop": final.stop_reason,
    }


def bench_speculative(
    model: str | None = None,
    limit: int = 20,
    *,
    draft: Any = "prompt-lookup",
    max_tokens: int = 192,
    flash_attn: bool = True,
    n_threads: int | None = None,
    n_ctx: int = 4096,
    batch_invariant: bool = True,
    against_default: bool = True,
) -> dict[str, Any]:
    """Plain against speculative decoding on `limit` grounded questions; see the module docstring.

    `draft`: "prompt-lookup", the path of a draft GGUF, or a LlamaDraftModel (for tuning).
    `batch_invariant=False`: both sides with llama.cpp's default kernels (weights repacked, F16
    KV cache); drafts may then change the text. `against_default`: also run a third, plain backend
    with llama.cpp's default settings (when `batch_invariant`), for the speedup a user of the
    default backend sees."""
    from tooltoken import Agent, LlamaBackend
    from tooltoken._backend import make_draft
    from tooltoken._models import resolve_model
    from tooltoken.tools import ConfigError

    if limit < 1:
        raise ConfigError("limit must be at least 1")
    path = str(resolve_model(model))
    drafter = make_draft(draft)
    if drafter is None:
        raise ConfigError("bench speculative needs a draft: 'prompt-lookup', a draft GGUF or a LlamaDraftModel")
    kwargs: dict[str, Any] = {"flash_attn": flash_attn}
    plain = LlamaBackend(path, n_ctx=n_ctx, n_threads=n_threads, batch_invariant=batch_invariant, llama_kwargs=kwargs)
    spec = LlamaBackend(path, n_ctx=n_ctx, n_threads=n_threads, draft=drafter, batch_invariant=batch_invariant,
                        llama_kwargs={**kwargs, "logits_all": True})
    backends = {"plain": plain, "speculative": spec}
    if against_default and batch_invariant:
        backends["default"] = LlamaBackend(path, n_ctx=n_ctx, n_threads=n_threads, llama_kwargs=kwargs)
    if hasattr(drafter, "check"):
        drafter.check(spec.llm)
    lookup = _lookup_tool()
    agents = {name: Agent(b, tools=[lookup], tool_choice="lookup", max_tokens=max_tokens)
              for name, b in backends.items()}
    questions = [q for _, q in (QUESTIONS * (limit // len(QUESTIONS) + 1))[:limit]]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in backends}
    names = list(backends)
    try:
        for i, question in enumerate(questions):
            order = names[i % len(names) :] + names[: i % len(names)]  # each side first in turn
            for name in order:
                runs[name].append(_run(agents[name], question))
    finally:
        for backend in backends.values():
            backend.llm.close()
        if hasattr(drafter, "llm"):
            drafter.llm.close()
    differing = [i for i, (p, s) in enumerate(zip(runs["plain"], runs["speculative"]))
                 if (p["answer"], p["calls"]) != (s["answer"], s["calls"])]

    def rate(name: str, key: str) -> float:
        tokens = sum(r["tokens"] for r in runs[name])
        seconds = sum(r[key] for r in runs[name])
        return tokens / seconds if seconds else 0.0

    plain_rate, spec_rate = rate("plain", "decode_s"), rate("speculative", "decode_s")
    plain_wall, spec_wall = rate("plain", "wall_s"), rate("speculative", "wall_s")
    stats = getattr(drafter, "stats", None)
    default: dict[str, Any] = {}
    if "default" in runs:
        default_rate, default_wall = rate("default", "decode_s"), rate("default", "wall_s")
        default["tokens_per_s_plain_default"] = round(default_rate, 2)
        default["speedup_vs_default"] = round(spec_rate / default_rate, 3) if default_rate else None
        default["speedup_wall_vs_default"] = round(spec_wall / default_wall, 3) if default_wall else None
        default["differing_from_default"] = [
            i for i, (p, s) in enumerate(zip(runs["default"], runs["speculative"]))
            if (p["answer"], p["calls"]) != (s["answer"], s["calls"])]
    return {
        "model": plain.name,
        "n": len(questions),
        "draft": _describe(drafter),
        "tokens_per_s_plain": round(plain_rate, 2),
        "tokens_per_s_speculative": round(spec_rate, 2),
        "speedup": round(spec_rate / plain_rate, 3) if plain_rate else None,
        "identical_text": not differing,
        "differing": differing,
        "wall_tokens_per_s_plain": round(plain_wall, 2),
        "wall_tokens_per_s_speculative": round(spec_wall, 2),
        "speedup_wall": round(spec_wall / plain_wall, 3) if plain_wall else None,
        **default,
        "answer_tokens": sum(r["tokens"] for r in runs["plain"]),
        "tool_calls": sum(len(r["calls"]) for r in runs["plain"]),
        "acceptance": round(stats.acceptance, 3) if stats and stats.acceptance is not None else None,
        "drafted": stats.drafted if stats else None,
        "accepted": stats.accepted if stats else None,
        "draft_rounds": stats.rounds if stats else None,
        "flash_attn": flash_attn,
        "batch_invariant": batch_invariant,
        "n_threads": plain.llm.n_threads if hasattr(plain.llm, "n_threads") else n_threads,
        "max_tokens": max_tokens,
    }


def _describe(drafter: Any) -> str:
    fields = ("num_pred_tokens", "max_ngram_size", "min_ngram_size", "recent", "p_min")
    args = ", ".join(f"{f}={getattr(drafter, f)}" for f in fields if hasattr(drafter, f))
    where = f"{drafter.path}, " if hasattr(drafter, "path") else ""
    return f"{type(drafter).__name__}({where}{args})"
