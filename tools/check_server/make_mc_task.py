"""Writes a small multiple-choice task for lm-eval from local files: 20 general-knowledge questions
(a JSON-lines dataset) and the task YAML that reads it. No network access is needed.

Usage: make_mc_task.py OUT_DIR   then   lm_eval --include_path OUT_DIR --tasks arwkv_mc ...
"""
import json
import pathlib
import sys

QUESTIONS = [
    ("What is the capital of France?", ["Berlin", "Paris", "Madrid", "Rome"], 1),
    ("What is the capital of Italy?", ["Rome", "Vienna", "Lisbon", "Athens"], 0),
    ("How many legs does a spider have?", ["six", "four", "eight", "ten"], 2),
    ("Which planet is closest to the Sun?", ["Venus", "Mars", "Earth", "Mercury"], 3),
    ("What is the largest ocean on Earth?", ["Pacific", "Atlantic", "Indian", "Arctic"], 0),
    ("What colour is the sky on a clear day?", ["green", "blue", "red", "yellow"], 1),
    ("What do bees make?", ["milk", "silk", "honey", "wool"], 2),
    ("Which gas do plants take in from the air?", ["oxygen", "helium", "nitrogen", "carbon dioxide"], 3),
    ("How many days are in a week?", ["seven", "five", "ten", "twelve"], 0),
    ("What is frozen water called?", ["steam", "ice", "sand", "glass"], 1),
    ("Which animal is known as the king of the jungle?", ["mouse", "rabbit", "lion", "sheep"], 2),
    ("What is the boiling point of water at sea level in Celsius?", ["50", "75", "150", "100"], 3),
    ("Who wrote Romeo and Juliet?", ["William Shakespeare", "Charles Dickens", "Jane Austen", "Mark Twain"], 0),
    ("What is the capital of Japan?", ["Beijing", "Tokyo", "Seoul", "Bangkok"], 1),
    ("What is the chemical symbol for gold?", ["Ag", "Fe", "Au", "Pb"], 2),
    ("How many continents are there?", ["three", "five", "nine", "seven"], 3),
    ("What is the tallest mountain in the world?", ["Mount Everest", "Mont Blanc", "Kilimanjaro", "Fuji"], 0),
    ("Which language is mainly spoken in Brazil?", ["Spanish", "Portuguese", "French", "German"], 1),
    ("What is two plus two?", ["three", "five", "four", "six"], 2),
    ("Which organ pumps blood through the body?", ["lung", "liver", "kidney", "heart"], 3),
]

TASK = """task: arwkv_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
target_delimiter: " "
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""


def main() -> None:
    out = pathlib.Path(sys.argv[1]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = out / "arwkv_mc.jsonl"
    with data.open("w") as f:
        for q, choices, answer in QUESTIONS:
            f.write(json.dumps({"question": q, "choices": choices, "answer": answer}) + "\n")
    (out / "arwkv_mc.yaml").write_text(TASK.format(data=data))
    print(f"wrote {len(QUESTIONS)} questions to {data}")


if __name__ == "__main__":
    main()
