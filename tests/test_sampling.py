"""Frame samplers: parity with the original ActionCLIP's evaluation indices, and each sampler's contract."""

import numpy as np
import pytest
import torch

from actionclip.sampling import (
    DenseSampler,
    MultiViewSampler,
    SamplingError,
    TSNSampler,
    UniformSampler,
    average_view_scores,
    get_sampler,
)


def _reference_cases(reference_inputs):
    for key, indices in reference_inputs["val_indices_1based"].items():
        segments, frames = (int(part[1:]) for part in key.split("_"))
        yield key, segments, frames, [int(i) - 1 for i in indices]


def test_tsn_eval_equals_original_indices_for_every_reference_case(reference_inputs):
    cases = list(_reference_cases(reference_inputs))
    assert len(cases) == 18
    for key, segments, frames, expected in cases:
        got = TSNSampler(segments)(frames)
        assert got.dtype == np.int64, key
        assert got.tolist() == expected, key


def test_tsn_eval_is_segment_centres_for_long_videos():
    # 8 segments of 12.5 frames: centre of a one-frame window in segment i is 12.5 i + 5.75
    assert TSNSampler(8)(100).tolist() == [int(12.5 * i + 5.75) for i in range(8)]


def test_tsn_eval_short_video_repeats_frames_in_order():
    got = TSNSampler(16)(5)
    assert got.tolist() == sorted(got.tolist())
    assert set(got.tolist()) == set(range(5))


def test_tsn_train_draws_one_frame_inside_each_segment():
    sampler = TSNSampler(8, mode="train", seed=0)
    bounds = np.arange(9) * 100 // 8
    draws = np.stack([sampler(100) for _ in range(200)])
    assert np.all(draws >= bounds[:-1]) and np.all(draws < bounds[1:])
    assert len({tuple(row) for row in draws.tolist()}) > 150  # random, not one fixed answer


def test_tsn_train_is_reproducible_with_a_seed_or_generator():
    assert TSNSampler(8, "train", seed=3)(300).tolist() == TSNSampler(8, "train", seed=3)(300).tolist()
    first = TSNSampler(8, "train")(300, np.random.default_rng(7))
    assert first.tolist() == TSNSampler(8, "train")(300, np.random.default_rng(7)).tolist()


def test_tsn_train_short_video_uses_every_frame():
    got = TSNSampler(8, "train", seed=0)(5)
    assert len(got) == 8 and set(got.tolist()) == set(range(5)) and got.tolist() == sorted(got.tolist())


def test_tsn_views_centre_sub_segments_and_first_view_of_one_is_eval():
    sampler = TSNSampler(4)
    assert sampler.views(100, 1)[0].tolist() == sampler(100).tolist()
    views = sampler.views(100, 2)  # segments of 25, sub-segments of 12.5: centres 5.75 and 18.25
    assert views.tolist() == [[5, 30, 55, 80], [18, 43, 68, 93]]


def test_uniform_includes_first_and_last_frame():
    assert UniformSampler(5)(101).tolist() == [0, 25, 50, 75, 100]
    assert UniformSampler(1)(11).tolist() == [5]


def test_uniform_train_stays_in_range_and_varies():
    sampler = UniformSampler(8, mode="train", seed=1)
    draws = np.stack([sampler(50) for _ in range(50)])
    assert draws.min() >= 0 and draws.max() <= 49
    assert len({tuple(row) for row in draws.tolist()}) > 10


def test_dense_eval_takes_the_middle_clip_with_its_stride():
    assert DenseSampler(4, stride=3)(100).tolist() == [45, 48, 51, 54]  # span 10, start (100 - 10) // 2


def test_dense_short_video_clamps_to_last_frame():
    assert DenseSampler(4, stride=4)(6).tolist() == [0, 4, 5, 5]


def test_dense_train_start_is_random_and_clip_fits():
    sampler = DenseSampler(8, stride=2, mode="train", seed=0)
    starts = {int(sampler(40)[0]) for _ in range(100)}
    assert min(starts) >= 0 and max(starts) <= 40 - 15 and len(starts) > 10


def test_multiview_layout_is_clip_major_then_crops():
    sampler = MultiViewSampler(num_clips=2, base=TSNSampler(4), num_crops=3)
    got = sampler(100)
    clips = TSNSampler(4).views(100, 2)
    assert got.shape == (6, 4)
    assert [row.tolist() for row in got] == [clips[v // 3].tolist() for v in range(6)]
    assert sampler.num_views == 6


def test_multiview_dense_spreads_clips_over_the_video():
    got = MultiViewSampler(3, "dense", num_frames=4, stride=2)(107)
    assert got[:, 0].tolist() == [0, 50, 100]


def test_average_view_scores_means_each_videos_contiguous_views():
    scores = torch.arange(12.0).reshape(6, 2)  # 2 videos x 3 views, 2 classes
    averaged = average_view_scores(scores, 3)
    assert torch.equal(averaged, torch.tensor([[2.0, 3.0], [8.0, 9.0]]))
    assert np.array_equal(average_view_scores(scores.numpy(), 3), averaged.numpy())


def test_average_view_scores_rejects_rows_not_divisible_by_views():
    with pytest.raises(SamplingError, match="not a multiple"):
        average_view_scores(torch.zeros(5, 2), 3)


def test_get_sampler_builds_by_name_and_rejects_unknown_names():
    assert get_sampler("tsn", num_frames=8)(100).tolist() == TSNSampler(8)(100).tolist()
    with pytest.raises(SamplingError, match="unknown sampler 'nope'"):
        get_sampler("nope")
    with pytest.raises(SamplingError, match="bad arguments"):
        get_sampler("tsn", segments=8)


@pytest.mark.parametrize("frames", [0, -3, 2.5, None])
def test_samplers_reject_videos_without_frames(frames):
    with pytest.raises(SamplingError):
        TSNSampler(8)(frames)


@pytest.mark.parametrize(
    "make",
    [
        lambda: TSNSampler(0),
        lambda: DenseSampler(8, stride=0),
        lambda: TSNSampler(8, mode="test"),
        lambda: MultiViewSampler(2, num_crops=2),
    ],
)
def test_samplers_reject_bad_settings(make):
    with pytest.raises(SamplingError):
        make()


def test_samplers_return_valid_indices_for_many_lengths():
    samplers = [
        TSNSampler(8),
        TSNSampler(8, "train", seed=0),
        UniformSampler(8),
        UniformSampler(8, "train", seed=0),
        DenseSampler(8, 4),
        DenseSampler(8, 4, "train", seed=0),
        MultiViewSampler(4, TSNSampler(8), 3),
    ]
    for sampler in samplers:
        for frames in range(1, 400, 7):
            got = sampler(frames)
            assert got.dtype == np.int64 and got.min() >= 0 and got.max() < frames, (sampler, frames)


def test_samplers_are_built_alike_by_name():
    from actionclip.sampling import get_sampler

    for name in ("tsn", "uniform", "dense"):
        sampler = get_sampler(name, num_frames=4, mode="eval")
        assert sampler.num_frames == 4 and sampler(40).shape == (4,)
    assert get_sampler("tsn", num_frames=4)(40).tolist() == TSNSampler(4)(40).tolist()
