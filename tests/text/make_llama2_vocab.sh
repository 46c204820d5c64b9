#!/bin/sh
# Fixture step of the Llama-2 tokenizer test: convert the third-party llama2-tokenizer.model to a
# vocabulary-only GGUF, or exit 77 (skipped) when the model is absent. The model is looked up where
# the C tests' shared_data_path() looks: $R2GEN_SHARED_DATA, else ../shared/data beside the source.
# usage: make_llama2_vocab.sh PYTHON SOURCE_DIR OUT.gguf
python=$1
source_dir=$2
out=$3
if [ -n "$R2GEN_SHARED_DATA" ]; then
    model=$R2GEN_SHARED_DATA/llama2-tokenizer.model
else
    model=$source_dir/../shared/data/llama2-tokenizer.model
fi
if [ ! -r "$model" ]; then
    echo "skipping: $model is absent (third-party data; set R2GEN_SHARED_DATA to its folder)"
    exit 77
fi
exec "$python" "$source_dir/tools/r2gen_convert.py" --tokenizer "$model" --vocab-only --out "$out"
