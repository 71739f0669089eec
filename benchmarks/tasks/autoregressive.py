"""An autoregressive policy over token sequences, as a torch.distributions.Distribution.

A sequence z = (z_1, ..., z_L) of tokens from a vocabulary of V is drawn one token at a time from a
small GRU whose weights are the distribution's parameters (not per-step logits):

    x_1 = bos,  x_t = E^T z_(t-1)                      (token embedding; bos a learned start vector)
    h_t = GRU(x_t, h_(t-1)),  h_0 = 0                  (torch.nn.GRUCell's gates r, z, n)
    p(z_t | z_<t) = softmax(W_out h_t + b_out)
    log p(z) = sum_t log p(z_t | z_<t)

Samples are one-hot, shaped (*sample_shape, *batch_shape, L, V), so the score-function estimators of the
registry apply unchanged (`sample`, `log_prob`), and `log_prob` accepts points of the simplex as well
(teacher forcing with relaxed tokens: sum_t <y_t, log softmax(logits_t(y_<t))>). Every weight has leading
batch dimensions (the harness's N copies of theta): row b of a batch is a policy of its own, and the
network runs batched over rows with `torch.baddbmm`.

A relaxed sampling path (`relaxed_sample`) feeds the relaxed, straight-through or hard-forward token of
step t into step t + 1 through the embedding, so Gumbel-Softmax, straight-through Gumbel-Softmax and
straight-through (estimators.relaxed) differentiate through the whole sequence.

`enumerate_log_probs` gives log p of all V^L sequences at once by expanding the prefix tree (V^t hidden
states at step t, one GRU step per level), for exact expectations and gradients.

References:
    Cho, K. et al. (2014). Learning phrase representations using RNN encoder-decoder for statistical
    machine translation. EMNLP (the GRU).
    Williams, R. J. (1992). Machine Learning 8 (REINFORCE on such policies).
"""
from __future__ import annotations

import math

import torch
import torch.distributions as D
from torch.distributions import constraints

from estimators.families import register_family
from estimators.relaxed import gumbel_noise, softmax_last

# The parameters, in the order of the flat gradient: name -> shape for vocabulary V, embedding width E,
# hidden width H (torch.nn.GRUCell's layout: rows of w_ih / w_hh are the r, z, n gates in that order).
WEIGHT_NAMES = ("bos", "embedding", "w_ih", "w_hh", "b_ih", "b_hh", "w_out", "b_out")
WEIGHT_DIMS = {"bos": 1, "embedding": 2, "w_ih": 2, "w_hh": 2, "b_ih": 1, "b_hh": 1, "w_out": 2, "b_out": 1}
RELAXED_KINDS = ("concrete", "st_concrete", "straight_through")


def weight_shapes(vocab: int, hidden: int = 16, embedding: int | None = None) -> dict[str, tuple[int, ...]]:
    embedding = hidden if embedding is None else embedding
    return {"bos": (embedding,), "embedding": (vocab, embedding), "w_ih": (3 * hidden, embedding),
            "w_hh": (3 * hidden, hidden), "b_ih": (3 * hidden,), "b_hh": (3 * hidden,),
            "w_out": (vocab, hidden), "b_out": (vocab,)}


def check_positive_integer(name: str, value, minimum: int = 1, why: str = "") -> int:
    """value as an int, or a ValueError naming it and the fix."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer() \
            or value < minimum:
        given = f"{value:g}" if isinstance(value, float) else repr(value)  # a point's 1 is parsed as 1.0
        raise ValueError(f"{name} must be an integer >= {minimum}{f' ({why})' if why else ''}, got {given}")
    return int(value)


def policy_weights(vocab: int, hidden: int = 16, seed: int = 0, logit_scale: float = 1.0,
                   dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
    """Seeded initial weights: torch's defaults (embedding N(0, 1), GRU and output layer U(-1/sqrt(H), 1/sqrt(H)))
    with the output layer multiplied by `logit_scale` (above 1: a peaked, 'pretrained-like' policy)."""
    vocab = check_positive_integer("vocab", vocab, 2, "one token has one sequence and no gradient")
    hidden = check_positive_integer("hidden", hidden)
    generator = torch.Generator().manual_seed(seed)
    bound = 1.0 / math.sqrt(hidden)
    weights = {}
    for name, shape in weight_shapes(vocab, hidden).items():
        if name in ("bos", "embedding"):
            weights[name] = torch.randn(shape, generator=generator, dtype=dtype)
        else:
            weights[name] = (torch.rand(shape, generator=generator, dtype=dtype) * 2 - 1) * bound
    weights["w_out"] = weights["w_out"] * logit_scale
    weights["b_out"] = weights["b_out"] * logit_scale
    return weights


# Work below this many elements (rows x samples x gate width) runs on one torch thread, the forward pass
# and the batched products' backward. On a CPU shared with other processes every multi-threaded launch
# waits for a time slice, and MKL's tanh and exp launch threads even for a few hundred elements: with 2
# threads on 2 loaded cores (load 8-10) one tanh of 768 floats took 12-15 ms, on one thread 3 us, and
# drawing 16 estimates of 3 samples 0.5-1.2 s against 0.02-0.2 s (torch 2.13). The registry-wide tests draw
# hundreds of such small batches; the sweep's 10^4 estimates keep every thread.
SMALL_WORK = 2 ** 20


class one_thread_if_small:
    """One torch thread inside the block when `elements` < SMALL_WORK (on CPU); the count restored after."""

    def __init__(self, elements: int, device: torch.device | str = "cpu"):
        self.inline = torch.device(device).type == "cpu" and elements < SMALL_WORK
        self.before = 1

    def __enter__(self):
        if self.inline:
            self.before = torch.get_num_threads()
            if self.before > 1:
                torch.set_num_threads(1)

    def __exit__(self, *exc):
        if self.inline and self.before > 1:
            torch.set_num_threads(self.before)


class _BatchedAffine(torch.autograd.Function):
    """bias + x @ w (torch.baddbmm, or torch.bmm without a bias) for x (B, M, K), w (B, K, J), bias
    broadcastable to (B, M, J); forward and backward on one thread when small (SMALL_WORK)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(bias, x, w):
        with one_thread_if_small(x.shape[0] * x.shape[1] * w.shape[-1], x.device):
            return torch.bmm(x, w) if bias is None else torch.baddbmm(bias, x, w)

    @staticmethod
    def setup_context(ctx, inputs, output):
        bias, x, w = inputs
        ctx.save_for_backward(x, w)
        ctx.bias_shape = None if bias is None else bias.shape

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        with one_thread_if_small(grad.numel(), grad.device):
            grad_bias = grad.sum_to_size(ctx.bias_shape) if ctx.needs_input_grad[0] else None
            grad_x = torch.bmm(grad, w.transpose(1, 2)) if ctx.needs_input_grad[1] else None
            grad_w = torch.bmm(x.transpose(1, 2), grad) if ctx.needs_input_grad[2] else None
        return grad_bias, grad_x, grad_w


class _SubGraph(torch.autograd.Function):
    """fn(*tensors) with an autograd graph of its own, whose backward pass runs on one thread when the work
    is small (one_thread_if_small): the elementwise backward of a GRU over a few hundred thousand elements
    launches threads op by op, each waiting for a time slice on a loaded CPU."""

    @staticmethod
    def forward(ctx, fn, small, *tensors):
        with torch.enable_grad():
            inputs = [t.detach().requires_grad_(t.requires_grad) for t in tensors]
            output = fn(*inputs)
        ctx.graph = (output, [t for t in inputs if t.requires_grad], [t.requires_grad for t in tensors], small)
        return output.detach()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        output, leaves, needed, small = ctx.graph
        with small:
            # retain_graph: the outer graph may be differentiated again (retain_graph there); the inner one
            # is freed with this node either way
            grads = iter(torch.autograd.grad(output, leaves, grad, allow_unused=True, retain_graph=True)
                         if leaves else ())
        return (None, None, *[next(grads) if need else None for need in needed])


def _functorch_active() -> bool:
    """Whether a torch.func transform (grad, vmap) is running: it cannot see through a graph of our own."""
    try:
        return torch._C._functorch.peek_interpreter_stack() is not None
    except AttributeError:  # an older torch without it
        return False


def _on_its_own_graph(fn, small: one_thread_if_small, tensors: list[torch.Tensor]) -> torch.Tensor:
    """fn(*tensors), differentiable, with its backward pass under `small` (fn's forward is run under it by
    the caller's scope)."""
    if not torch.is_grad_enabled() or not any(t.requires_grad for t in tensors) or _functorch_active():
        return fn(*tensors)  # torch.func's transforms differentiate fn itself
    return _SubGraph.apply(fn, small, *tensors)


def _affine(bias: torch.Tensor | None, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return _BatchedAffine.apply(bias, x, w)


class _Network:
    """The GRU policy on flattened batch rows: every weight reshaped to (B, ...), B = prod(batch_shape)."""

    def __init__(self, weights: dict[str, torch.Tensor], batch_shape: torch.Size):
        rows = math.prod(batch_shape)
        w = {name: weights[name].reshape(rows, *weights[name].shape[len(batch_shape):]) for name in WEIGHT_NAMES}
        self.rows = rows
        self.hidden = w["w_hh"].shape[-1]
        self.w_hh_t, self.b_hh = w["w_hh"].transpose(1, 2), w["b_hh"].unsqueeze(1)
        self.w_out_t, self.b_out = w["w_out"].transpose(1, 2), w["b_out"].unsqueeze(1)
        # Input gates of every token, E W_ih^T (B, V, 3H): a token's (or a relaxed token's) input gates are
        # its one-hot (simplex) row times this table, one product instead of an embedding then a product.
        self.token_gates = _affine(None, w["embedding"], w["w_ih"].transpose(1, 2))
        self.b_ih = w["b_ih"].unsqueeze(1)
        self.first_gates = _affine(self.b_ih, w["bos"].unsqueeze(1), w["w_ih"].transpose(1, 2))  # (B, 1, 3H)

    def gates_of(self, tokens: torch.Tensor) -> torch.Tensor:
        """Input gates of tokens (B, M, V), one-hot or on the simplex: (B, M, 3H)."""
        return _affine(self.b_ih, tokens, self.token_gates)

    def step(self, input_gates: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        """One GRU step (torch.nn.GRUCell): input gates (B, M, 3H), state (B, M, H) or None for h_0 = 0."""
        hidden = self.hidden
        hidden_gates = self.b_hh.expand(input_gates.shape) if h is None else _affine(self.b_hh, h, self.w_hh_t)
        # split, not slices: the backward of a split is one concatenation, that of a slice a full-size zero
        # tensor per slice
        input_rz, input_n = input_gates.split([2 * hidden, hidden], -1)
        hidden_rz, hidden_n = hidden_gates.split([2 * hidden, hidden], -1)
        reset, update = torch.sigmoid(input_rz + hidden_rz).split([hidden, hidden], -1)
        candidate = torch.tanh(input_n + reset * hidden_n)
        return candidate - update * candidate if h is None else candidate + update * (h - candidate)

    def step_from_start(self, samples: int) -> torch.Tensor:
        """h_1 from the start vector, for `samples` sequences per row: (B, M, H)."""
        h = self.step(self.first_gates, None)
        # contiguous: a batched product with a stride-0 operand falls back to one product per row
        return h.expand(self.rows, samples, self.hidden).contiguous()

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return _affine(self.b_out, h, self.w_out_t)


def log_softmax_last(x: torch.Tensor) -> torch.Tensor:
    """log softmax over the last axis; written out on CPU for fewer than 16 classes (see
    estimators.relaxed.softmax_last: torch's kernel is several times slower there)."""
    if x.shape[-1] >= 16 or x.device.type != "cpu":
        return torch.log_softmax(x, -1)
    shifted = x - x.detach().amax(-1, keepdim=True)
    return shifted - shifted.exp().sum(-1, keepdim=True).log()


def _draw_one_hot(logits: torch.Tensor) -> torch.Tensor:
    """One-hot draws from softmax(logits) by the inverse CDF (as estimators.sampling does for a
    OneHotCategorical): class k where c_(k-1) <= u c_V < c_k."""
    cumulative = softmax_last(logits).cumsum(-1)
    uniform = torch.rand((*logits.shape[:-1], 1), dtype=logits.dtype, device=logits.device)
    index = (uniform * cumulative[..., -1:] >= cumulative[..., :-1]).sum(-1, keepdim=True)
    return (index == torch.arange(logits.shape[-1], device=logits.device)).to(logits.dtype)


class AutoregressiveSequence(D.Distribution):
    """Sequences of `length` tokens from a GRU policy with (batched) weights; one-hot samples (L, V).

    `weights`: WEIGHT_NAMES -> tensors shaped (*batch_shape, *weight_shapes(V, H)[name]). The batch
    shape is read from the embedding (its leading dimensions)."""

    arg_constraints = {name: constraints.real for name in WEIGHT_NAMES}
    support = constraints.independent(constraints.one_hot, 1)
    has_rsample = False
    has_enumerate_support = True

    def __init__(self, weights: dict[str, torch.Tensor], length: int, validate_args: bool | None = None):
        missing = [name for name in WEIGHT_NAMES if name not in weights]
        if missing:
            raise ValueError(f"AutoregressiveSequence needs the weights {', '.join(WEIGHT_NAMES)}; missing "
                             f"{', '.join(missing)} (build them with policy_weights(vocab, hidden, seed))")
        self.length = check_positive_integer("length", length)
        batch_shape = weights["embedding"].shape[:-2]
        for name in WEIGHT_NAMES:
            value = weights[name]
            if value.shape[:len(batch_shape)] != batch_shape or value.dim() != len(batch_shape) + WEIGHT_DIMS[name]:
                raise ValueError(f"weight {name} has shape {tuple(value.shape)}: expected the batch shape "
                                 f"{tuple(batch_shape)} then {WEIGHT_DIMS[name]} dimension(s)")
            setattr(self, name, value)
        self.weights = {name: weights[name] for name in WEIGHT_NAMES}
        self.vocab = weights["embedding"].shape[-2]
        super().__init__(batch_shape, torch.Size((self.length, self.vocab)), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        weights = {name: value.expand(*batch_shape, *value.shape[len(self.batch_shape):])
                   for name, value in self.weights.items()}
        return AutoregressiveSequence(weights, self.length, validate_args=False)

    def _network(self) -> _Network:
        return _Network(self.weights, self.batch_shape)

    @property
    def logits(self) -> torch.Tensor:
        """The first token's logits (*batch_shape, V): the context a baseline network (NVIL's) reads."""
        network = self._network()
        return network.logits(network.step_from_start(1)).reshape(*self.batch_shape, self.vocab)

    # --- layout: the network runs on (B, M, ...) rows-first; samples are (*sample_shape, *batch, L, V)

    def _to_sample_layout(self, tokens: torch.Tensor, sample_shape: torch.Size) -> torch.Tensor:
        # (B, M, L, V) -> (*sample_shape, *batch_shape, L, V)
        return tokens.transpose(0, 1).reshape(*sample_shape, *self.batch_shape, self.length, self.vocab)

    def _to_network_layout(self, value: torch.Tensor) -> tuple[torch.Tensor, torch.Size]:
        # (*sample_shape, *batch_shape, L, V), batch dimensions broadcast -> (B, M, L, V)
        extra = value.dim() - len(self.batch_shape) - 2
        if extra < 0:
            value = value.reshape((1,) * -extra + tuple(value.shape))
            extra = 0
        sample_shape = value.shape[:extra]
        value = value.expand(*sample_shape, *self.batch_shape, self.length, self.vocab)
        rows = math.prod(self.batch_shape)
        return value.reshape(math.prod(sample_shape), rows, self.length, self.vocab).transpose(0, 1), sample_shape

    def _small(self, samples: int) -> one_thread_if_small:
        return one_thread_if_small(math.prod(self.batch_shape) * samples * self.w_hh.shape[-2], self.w_hh.device)

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        sample_shape = torch.Size(sample_shape)
        samples = math.prod(sample_shape)
        with torch.no_grad(), self._small(samples):
            network = self._network()
            h = network.step_from_start(samples)
            tokens = []
            for t in range(self.length):
                if t > 0:
                    h = network.step(network.gates_of(tokens[-1]), h)
                tokens.append(_draw_one_hot(network.logits(h)))
            return self._to_sample_layout(torch.stack(tokens, 2), sample_shape)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """sum_t <z_t, log softmax(logits_t(z_<t))>, teacher-forced: one-hot z or points of the simplex."""
        tokens, sample_shape = self._to_network_layout(value)
        tokens = tokens.to(self.w_hh.dtype)  # a float32 one-hot against float64 weights, as torch's own accept
        small = self._small(tokens.shape[1])
        with small:
            if self._validate_args:
                self._validate_sample(value)
            names = list(self.weights)

            def log_prob(tokens, *weights):
                return self._log_prob(tokens, sample_shape, _Network(dict(zip(names, weights)), self.batch_shape))

            return _on_its_own_graph(log_prob, small, [tokens, *self.weights.values()])

    def _log_prob(self, tokens: torch.Tensor, sample_shape: torch.Size, network: _Network) -> torch.Tensor:
        rows, samples = tokens.shape[:2]
        # The input gates of steps 2..L in one product; only the recurrence runs step by step.
        gates = network.gates_of(tokens[:, :, :-1].reshape(rows, samples * (self.length - 1), self.vocab))
        # unbind, not indexing: the backward of L - 1 index operations would fill L - 1 full-size zero tensors
        gates = gates.reshape(rows, samples, self.length - 1, 3 * network.hidden).unbind(2)
        h = network.step_from_start(samples)
        states = [h]
        for step_gates in gates:
            h = network.step(step_gates, h)
            states.append(h)
        hidden = torch.stack(states, 2).reshape(rows, samples * self.length, network.hidden)
        log_probs = log_softmax_last(network.logits(hidden)).reshape(rows, samples, self.length, self.vocab)
        total = (tokens * log_probs).sum((-1, -2))                        # (B, M)
        return total.transpose(0, 1).reshape(tuple(sample_shape) + tuple(self.batch_shape))

    def relaxed_sample(self, num_samples: int, kind: str, tau: float = 1.0) -> torch.Tensor:
        """Tokens (S, *batch_shape, L, V) on a differentiable path, step t's token fed to step t + 1:

        concrete          y_t = softmax((logits_t + g_t) / tau), g Gumbel; y_t is fed forward
        st_concrete       h_t = one-hot argmax(logits_t + g_t) forward, y_t's gradient backward:
                          h_t + y_t - stop(y_t) is fed forward (the forward pass is an exact sample)
        straight_through  z_t ~ softmax(logits_t), z_t + p_t - stop(p_t) fed forward (Bengio et al. 2013)
        """
        if kind not in RELAXED_KINDS:
            raise ValueError(f"relaxed_sample kind must be one of {', '.join(RELAXED_KINDS)}, got {kind!r}")
        small = self._small(num_samples)
        with small:
            names = list(self.weights)

            def relaxed(*weights):
                network = _Network(dict(zip(names, weights)), self.batch_shape)
                return self._relaxed_sample(num_samples, kind, tau, network)

            return _on_its_own_graph(relaxed, small, list(self.weights.values()))

    def _relaxed_sample(self, num_samples: int, kind: str, tau: float, network: _Network) -> torch.Tensor:
        h = network.step_from_start(num_samples)
        tokens = []
        for t in range(self.length):
            if t > 0:
                h = network.step(network.gates_of(tokens[-1]), h)
            logits = network.logits(h)
            if kind == "straight_through":
                probs = softmax_last(logits)
                hard = _draw_one_hot(logits.detach())
                tokens.append(hard + (probs - probs.detach()))
                continue
            scaled = gumbel_noise(1, logits)[0].mul_(1.0 / tau) + logits * (1.0 / tau)
            soft = softmax_last(scaled)
            if kind == "concrete":
                tokens.append(soft)
            else:
                hard = (scaled.argmax(-1, keepdim=True) == torch.arange(self.vocab, device=logits.device)).to(soft.dtype)
                tokens.append(hard + (soft - soft.detach()))
        return self._to_sample_layout(torch.stack(tokens, 2), torch.Size((num_samples,)))

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """Every sequence, one-hot, in lexicographic order: (V^L, *batch_shape, L, V) (V^L, 1, ..., L, V)
        without expand)."""
        values = all_sequences(self.vocab, self.length, self.embedding.dtype, self.embedding.device)
        values = values.reshape(len(values), *((1,) * len(self.batch_shape)), self.length, self.vocab)
        return values.expand(len(values), *self.batch_shape, self.length, self.vocab) if expand else values


def greedy_sequence(weights: dict[str, torch.Tensor], length: int) -> tuple[int, ...]:
    """The most likely token at each step given the previous ones, of an unbatched policy."""
    with torch.no_grad():
        network = _Network({name: value.unsqueeze(0) for name, value in weights.items()}, torch.Size((1,)))
        h, tokens = network.step_from_start(1), []
        for t in range(length):
            if t > 0:
                h = network.step(network.gates_of(tokens[-1]), h)
            logits = network.logits(h)
            classes = torch.arange(logits.shape[-1], device=logits.device)
            tokens.append((logits.argmax(-1, keepdim=True) == classes).to(logits.dtype))
        return tuple(int(token.argmax()) for token in tokens)


def all_sequences(vocab: int, length: int, dtype=torch.float64, device="cpu") -> torch.Tensor:
    """The V^L sequences, one-hot (V^L, L, V), in lexicographic order (the last token varies fastest)."""
    codes = torch.arange(vocab ** length, device=device)
    powers = vocab ** torch.arange(length - 1, -1, -1, device=device)
    tokens = torch.div(codes.unsqueeze(-1), powers, rounding_mode="floor") % vocab
    return (tokens.unsqueeze(-1) == torch.arange(vocab, device=device)).to(dtype)


def enumerate_log_probs(weights: dict[str, torch.Tensor], length: int) -> torch.Tensor:
    """log p of all V^L sequences (in all_sequences' order) of an unbatched policy, by expanding the
    prefix tree: level t holds the V^t prefixes' hidden states, one batched GRU step per level, so the
    work is sum_t V^t steps rather than L V^L. Differentiable in the weights."""
    network = _Network({name: value.unsqueeze(0) for name, value in weights.items()}, torch.Size((1,)))
    vocab = weights["embedding"].shape[-2]
    h = network.step_from_start(1)                                        # (1, 1, H): the empty prefix
    prefix_log_probs = torch.zeros(1, 1, dtype=h.dtype, device=h.device)
    eye = torch.eye(vocab, dtype=h.dtype, device=h.device)
    for t in range(length):
        log_probs = log_softmax_last(network.logits(h))                    # (1, P, V)
        prefix_log_probs = (prefix_log_probs.unsqueeze(-1) + log_probs).reshape(1, -1)   # (1, P V)
        if t + 1 < length:
            prefixes = h.shape[1]
            gates = network.gates_of(eye.unsqueeze(0))                     # (1, V, 3H): each next token's
            gates = gates.unsqueeze(1).expand(1, prefixes, vocab, gates.shape[-1]).reshape(1, prefixes * vocab, -1)
            h = network.step(gates, h.unsqueeze(2).expand(1, prefixes, vocab, h.shape[-1]).reshape(1, prefixes * vocab, -1))
    return prefix_log_probs.reshape(-1)


register_family(AutoregressiveSequence, "autoregressive")
