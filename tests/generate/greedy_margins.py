#!/usr/bin/env python3
"""Write the greedy cases of llama-tiny's cases.json as text for test_generate_quantised.c:
one line `case NAME MIN_NEW MAX_NEW REPETITION_PENALTY N_STEPS`, then one line per step
`TOKEN MARGIN` (the reference's choice and its lead over the runner-up, in processed-score units)."""
import json
import sys


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    with open(sys.argv[2], "w", encoding="ascii") as out:
        for case in cases:
            if case["kind"] != "greedy":
                continue
            p = case["params"]
            trace = case["trace"]
            out.write(f"case {case['name']} {p['min_new_tokens']} {p['max_new_tokens']} "
                      f"{p['repetition_penalty']!r} {len(trace)}\n")
            for step in trace:
                out.write(f"{step['token']} {step['margin']!r}\n")


if __name__ == "__main__":
    main()
