"""The demo behind ``actionclip demo`` / ``make demo``: the whole method, end to end, on a fresh machine without
network.

1. Generate the synthetic dataset (:mod:`actionclip.data.synthetic`): coloured shapes doing actions, real H.264
   MP4 files, with order-only pairs (``moving left`` / ``moving right``: the same clips played backwards) and a
   held-out split of new compositions for zero-shot evaluation.
2. Train two small ActionCLIP models from scratch with `transformers.Trainer` (:class:`ActionCLIPTrainer`), with
   the same data, budget and seed: one with a temporal visual prompt, one with mean pooling (``meanP``), which
   cannot see frame order. The text tower stays at its random initialisation (see ``DemoProfile.freeze_text``).
3. Evaluate both (:mod:`actionclip.evaluation.runner`): closed-set on the validation videos, zero-shot on the
   held-out compositions, and the accuracy of telling the two members of each order-only pair apart.
4. Classify one held-out video through the zero-shot pipeline, write the model cards (their config records what
   they were trained on: synthetic videos, not for real ones), the confusion matrices and the output folder's README;
   the temporal model's weights before training are saved too, as the zero-shot end of WiSE-FT.
5. Print a short report with the chance levels and the checks the demo exists to show: closed-set accuracy far
   above chance, the temporal prompt above ``meanP`` on the order-only pairs while ``meanP`` stays near 50%, and
   zero-shot accuracy above chance.

Everything is seeded; on CPU with a fixed number of threads the run is deterministic. One module per concern:
`profiles` (sizes, settings and what the models are for), `train` (one model from scratch), `evaluate` (closed-set,
zero-shot, order-only pairs), `inference` (the trained model through the pipeline: one held-out video, untrimmed
videos localised), `report` (the checks, the printed report, the output folder's README) and `run` (`run_demo`, the
steps in order). The command is ``actionclip demo``.
"""
