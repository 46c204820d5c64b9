#!/usr/bin/env python3
"""Flatten tests/data/r2gen-tiny/expected.json into one tab-separated line per study, so the C
end-to-end test needs no JSON parser. Fields: name, flavour, num_beams, min_new_tokens,
max_new_tokens, repetition_penalty, length_penalty, images, view feature files, embeddings file,
inputs_embeds file, new token ids, beam score (or 'none'), report (hex of its UTF-8 bytes).
Lists are comma-separated; paths are relative to tests/data/r2gen-tiny."""
import json
import sys


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        expected = json.load(f)
    with open(sys.argv[2], "w", encoding="ascii") as out:
        for s in expected["studies"]:
            g = s["generate"]
            fields = [s["name"], s["flavour"], g["num_beams"], g["min_new_tokens"],
                      g["max_new_tokens"], repr(g["repetition_penalty"]), repr(g["length_penalty"]),
                      ",".join(s["images"]), ",".join(s["view_features"]), s["embeddings"],
                      s["inputs_embeds"], ",".join(str(t) for t in s["new_tokens"]),
                      "none" if s["beam_score"] is None else repr(s["beam_score"]),
                      s["report"].encode("utf-8").hex()]
            out.write("\t".join(str(x) for x in fields) + "\n")


if __name__ == "__main__":
    main()
