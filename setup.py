from pathlib import Path

from setuptools import find_namespace_packages, setup

ONNX_REQUIRES = ["onnx>=1.16", "onnxruntime>=1.18"]
# SigLIP's tokenizer is a SentencePiece model (`spiece.model`), which transformers reads with this library.
SENTENCEPIECE_REQUIRES = ["sentencepiece>=0.2"]
# The cluster path (`actionclip.cluster.ray_data`): Ray Data brings pyarrow, which writes the Parquet files.
RAY_REQUIRES = ["ray[data]>=2.10"]  # override_num_blocks (2.10)

setup(
    name="actionclip",
    version="0.1.0",
    description="ActionCLIP (video action recognition as video-text matching) native to Hugging Face Transformers",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    # Namespace discovery lists the data folders (data/label_lists/, tokenizer_files/) as packages too, so setuptools does not
    # warn that "Python recognizes them as importable packages" but they are not listed.
    packages=find_namespace_packages(include=["actionclip", "actionclip.*"], exclude=["*.__pycache__"]),
    package_data={
        "actionclip": [
            "tokenizer_files/*",
            "data/label_lists/*.csv",
            "data/label_lists/README.md",
            "evaluation/metrics/**/*.py",
            "hub/model_card_template.md",
        ]
    },
    include_package_data=True,
    install_requires=[
        "torch>=2.4",
        "torchvision>=0.19",
        "transformers>=5.17,<6",
        "av>=12",
        "datasets>=3.0",
        "accelerate>=1.0",
        "evaluate>=0.4",
        "huggingface_hub>=1.0",
        "peft>=0.17",
        "safetensors>=0.4",
        "numpy>=1.26",
        "pillow>=10",
        "tqdm>=4.66",
        "matplotlib>=3.8",
        # the video index (`actionclip index` / `search`): its IVF-PQ index above a few hundred thousand rows
        "faiss-cpu>=1.8",
        # `actionclip index --from-parquet` (also what `datasets` installs)
        "pyarrow>=15",
    ],
    extras_require={
        # `actionclip app` / `actionclip space` (the web app); gradio_client comes with it.
        "app": ["gradio>=6.0"],
        # Tests drive the app in Debian's Chromium through Playwright (no browser download: its own driver only), and
        # export to ONNX (the onnx extra).
        "dev": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "ruff>=0.6",
            "scikit-video>=1.1.11",
            "gradio>=6.0",
            "playwright>=1.40",
            *ONNX_REQUIRES,
            # the SigLIP tests build and read a SentencePiece tokenizer
            *SENTENCEPIECE_REQUIRES,
            # transformers' common model tests (make test-transformers) import it
            "parameterized>=0.9",
            # tests/test_ray_data.py (a local Ray runtime)
            *RAY_REQUIRES,
        ],
        "onnx": ONNX_REQUIRES,
        # actionclip.cluster.ray_data: decoding in CPU tasks, the model in GPU actors, Parquet out.
        "ray": RAY_REQUIRES,
        # ActionCLIP on SigLIP (its SentencePiece tokenizer); the other families' tokenizers need nothing more.
        "sentencepiece": SENTENCEPIECE_REQUIRES,
    },
    entry_points={"console_scripts": ["actionclip=actionclip.commands:main"]},
)
