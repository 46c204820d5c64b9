"""Flatten llama-tiny's cases.json into whitespace-separated text that test_generate_llama.c
reads with scanf: per case a header, the expected sequence and score, and the beam trace.

    case <name> <num_beams> <min_new> <max_new> <repetition_penalty> <length_penalty> <n_steps>
    sequence <n> <ids...>
    score <sequence_score, 0 for greedy>
    beams <n_steps> then per step: <step> <tokens x K> <from x K> <scores x K>
"""
import json
import sys


def main(src, dst):
    with open(src) as f:
        cases = json.load(f)["cases"]
    lines = [f"cases {len(cases)}"]
    for c in cases:
        p = c["params"]
        beam = p["num_beams"] > 1
        trace = c["trace"] if beam else []
        lines.append(f"case {c['name']} {p['num_beams']} {p['min_new_tokens']} "
                     f"{p['max_new_tokens']} {p['repetition_penalty']!r} "
                     f"{p['length_penalty']!r} {len(c['trace'])}")
        lines.append(f"sequence {len(c['sequences'])} " + " ".join(map(str, c["sequences"])))
        lines.append(f"score {c['sequence_score']!r}" if beam else "score 0")
        lines.append(f"beams {len(trace)}")
        for t in trace:
            lines.append(" ".join([str(t["step"])] + [str(x) for x in t["beam_tokens"]] +
                                  [str(x) for x in t["beam_from"]] +
                                  [repr(x) for x in t["beam_scores"]]))
    with open(dst, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
