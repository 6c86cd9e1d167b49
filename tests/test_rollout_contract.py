"""What `collect_rollout` promises, checked step by step on envs whose episodes are scripted.

The replay check recomputes whatever the rollout stored, so it cannot see a state that was stored
and fed wrongly in the same way. These tests watch the policy's inputs directly: the state fed
at each step, the reset steps of NEXT_STEP autoreset, the values bootstrapped from after the last
step, and the bootstrap targets.
"""

import numpy as np
import pytest
import torch

from agent import RecurrentPPO
from agent.networks.fast_path import FusedPolicy
from tests.toy_envs import SCRIPT, scripted_steps, scripted_vector

T = 8  # steps per rollout; see SCRIPT for where the episodes of each copy start and end
GAMMA = 0.9
FINAL_OBS = [1.0, 1.0]  # ScriptedEpisodesEnv's observation after the last step of an episode


def make_model(**overrides) -> RecurrentPPO:
    config = dict(
        n_steps=T,
        batch_size=len(SCRIPT) * T,
        lstm_hidden_size=4,
        net_arch=[8],
        gamma=GAMMA,
        gae_lambda=0.95,
        device="cpu",
        seed=3,
    )
    return RecurrentPPO(scripted_vector(), **(config | overrides))


class Recorder:
    """Wraps the rollout's step (`FusedPolicy.step` on the fast path, `policy.step` on the
    reference path) to keep, for every rollout step, what went in and what came out."""

    def __init__(self, model: RecurrentPPO, monkeypatch: pytest.MonkeyPatch) -> None:
        self.obs, self.state_in, self.state_out, self.values = [], [], [], []
        step, fused_step = model.policy.step, FusedPolicy.step

        def record(obs, state, out):
            self.obs.append(obs.clone())
            self.state_in.append(state.clone())
            self.state_out.append(out.state.clone())
            self.values.append(out.values.clone())
            return out

        def recording_step(obs, state, *args, **kwargs):
            return record(obs, state, step(obs, state, *args, **kwargs))

        def recording_fused_step(actor, obs, state, *args, **kwargs):
            return record(obs, state, fused_step(actor, obs, state, *args, **kwargs))

        monkeypatch.setattr(model.policy, "step", recording_step)
        monkeypatch.setattr(FusedPolicy, "step", recording_fused_step)


def two_rollouts(monkeypatch, **overrides):
    model = make_model(**overrides)
    recorder = Recorder(model, monkeypatch)
    model._start_episodes()
    buffers = [model.collect_rollout(), model.collect_rollout()]
    for buffer in buffers:
        model.compute_advantages(buffer)
    return model, recorder, buffers


def test_state_is_zero_at_every_episode_start_and_carried_elsewhere(monkeypatch):
    _, rec, buffers = two_rollouts(monkeypatch)
    where = scripted_steps(SCRIPT, 2 * T)
    # the script covers an episode start at the second rollout's first step (copy 0)
    assert where["start"][T, 0] and where["start"][T + 1 :].any()
    for g in range(2 * T):
        for e in range(len(SCRIPT)):
            fed = rec.state_in[g][:, :, e]
            if where["start"][g, e]:
                assert torch.count_nonzero(fed) == 0, f"step {g}, env {e} starts an episode"
            else:
                assert torch.count_nonzero(fed) > 0
                assert torch.equal(fed, rec.state_out[g - 1][:, :, e]), f"step {g}, env {e}"
    # and the buffer stores the state that was fed, with the starts where they are
    for r, buffer in enumerate(buffers):
        fed = torch.stack(rec.state_in[r * T : (r + 1) * T])  # [T, S, layers, E, H]
        assert torch.equal(buffer.states, fed.permute(0, 3, 1, 2, 4))
        expected = torch.as_tensor(where["start"][r * T : (r + 1) * T])
        assert torch.equal(buffer.episode_starts.cpu(), expected)


def test_state_carried_across_the_rollout_boundary_is_the_last_output(monkeypatch):
    _, rec, (_, second) = two_rollouts(monkeypatch)
    where = scripted_steps(SCRIPT, 1, first=T)
    last_out = rec.state_out[T - 1]
    for e in range(len(SCRIPT)):
        stored = second.states[0, e]  # [S, layers, H]
        if where["start"][0, e]:
            assert torch.count_nonzero(stored) == 0
        else:  # copy 1 mid-episode; copies 2 and 3 at their reset step
            assert torch.count_nonzero(stored) > 0
            assert torch.equal(stored, last_out[:, :, e]), f"env {e}"


def test_last_values_are_what_the_next_rollout_computes_at_its_first_step(monkeypatch):
    """`last_values` are the values of the observations after the last step, from the state the
    next step is fed: zero where that step starts an episode (copy 0 here)."""
    _, _, (first, second) = two_rollouts(monkeypatch)
    assert scripted_steps(SCRIPT, 1, first=T)["start"][0].tolist() == [True, False, False, False]
    torch.testing.assert_close(first.last_values, second.values[0], rtol=0, atol=1e-6)


def test_reset_steps_are_stored_but_not_valid(monkeypatch):
    _, rec, buffers = two_rollouts(monkeypatch)
    for r, buffer in enumerate(buffers):
        where = scripted_steps(SCRIPT, T, first=r * T)
        assert where["reset"].any()
        assert torch.equal(buffer.valid.cpu(), torch.as_tensor(~where["reset"]))
        # a reset step is fed the final observation of the episode that ended
        obs = torch.stack(rec.obs[r * T : (r + 1) * T])
        final = torch.tensor(FINAL_OBS)
        assert (obs[torch.as_tensor(where["reset"])] == final).all()
        # its advantage and return are 0: nothing to learn there
        reset = torch.as_tensor(where["reset"])
        assert (buffer.advantages[reset] == 0).all() and (buffer.returns[reset] == 0).all()


def test_truncation_bootstraps_from_the_final_observation_and_termination_does_not(monkeypatch):
    model, rec, (first, second) = two_rollouts(monkeypatch)
    where = scripted_steps(SCRIPT, T)
    ends = np.argwhere(where["end"])
    assert len(ends) >= 4
    for t, e in ends:
        truncated = SCRIPT[e][1] == "truncated"
        assert bool(first.truncated[t, e]) == truncated
        assert bool(first.terminated[t, e]) == (not truncated)
        reward = first.rewards[t, e].item()
        target = first.returns[t, e].item()  # advantage + value: the chain stops at the end
        if not truncated:
            assert target == pytest.approx(reward, abs=1e-6), f"step {t}, env {e}"
            continue
        # V(final observation), under the memory of the episode that ended: the value the
        # next step (a reset step, here or in the next rollout) computes
        if t + 1 < T:
            bootstrap = rec.values[t + 1][e].item()
            assert bootstrap == pytest.approx(first.values[t + 1, e].item())
        else:
            bootstrap = second.values[0, e].item()
            final = torch.tensor([FINAL_OBS])
            value = model.policy.value(final, rec.state_out[T - 1][:, :, e : e + 1])
            assert bootstrap == pytest.approx(value.item(), abs=1e-6)
        assert abs(bootstrap) > 1e-3
        assert target == pytest.approx(reward + GAMMA * bootstrap, abs=1e-5), f"step {t}, env {e}"
