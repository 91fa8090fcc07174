"""Few-shot coding: a codebook applied by a model learned from human-coded units (per-code linear
SVMs on multi-label data, one logistic regression on single-label data), each segment read with
its turn and question. Method: README, section "Agreement with human coding" (How the machine
codes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.codebook import Codebook, Embed, code_views
from pipeline.config import CodingParams
from pipeline.errors import UserError
from pipeline.kappa import binary_kappa
from pipeline.vectors import unit_rows

NONE = "(none)"


MAX_TFIDF_FEATURES = 20000  # bounds the few-shot model's size and fitting time
CALIBRATION_FOLDS = 5  # multi-label few-shot: out-of-fold decisions for the thresholds
# multi-label few-shot: weight of the TF-IDF kernel beside the embedding kernel (1, 2, 4 score alike)
TFIDF_WEIGHT = 2.0
# multi-label few-shot: features approximating the RBF kernel (more gain little for far more time)
NYSTROEM_COMPONENTS = 300
SINGLE_LABEL_SHARE = 0.1  # at most this share of coded training units with 2+ codes: single-label
# single-label few-shot with C or tfidf "auto": the settings tried by inner cross-validation
SELECT_CS = (10.0, 100.0)
# ... where another setting beats the first (C = 10 with TF-IDF) by this much out of fold: on a
# hundred training units the inner folds' kappas differ by chance more than the settings do
SELECT_MARGIN = 0.02
MULTI_LABEL_C = 10.0  # multi-label few-shot with C "auto" (measured: README, "How the machine codes")
EVIDENCE_BLOCK = 1 << 22  # similarities held at once while finding each code's nearest coded unit
PREDICT_ROWS = 20000  # units coded at once (a cross-fitting fold is usually far fewer)


@dataclass
class FewShotCoder:
    """A classifier on frozen embeddings (+ TF-IDF) trained on human-coded units.

    `fit` takes unit texts, their embeddings and, per unit, the set of codes a human gave
    (an empty set = the human coded the unit and found no code applies).

    Two models, by the shape of the training data (README, "How the machine codes"):
    - single-label: a multinomial logistic regression on [embedding | TF-IDF];
    - multi-label: per code, a linear support-vector machine on [Nystroem features of an RBF
      kernel on the embeddings | sqrt(`TFIDF_WEIGHT`) x TF-IDF], which approximates a
      support-vector machine on the sum of the two kernels. The kernel machine itself held
      n_train^2 floats; these features hold n_train x `NYSTROEM_COMPONENTS`.
    """

    codes: list[str]
    C: float | str = "auto"
    tfidf: bool | str = "auto"
    max_codes: int = 3
    seed: int = 0

    def _tfidf(self, texts: list[str], *, fit: bool = False):
        """TF-IDF of word uni/bigrams; for single-label data also of character 2-5-grams within
        words (robust to the misspellings of short free-text answers; on long multi-label
        passages they cost agreement), each block unit-normalised."""
        if not self.tfidf_:
            return None
        from scipy.sparse import hstack

        if fit:
            from sklearn.feature_extraction.text import TfidfVectorizer

            self.vectorizers_ = [
                TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=MAX_TFIDF_FEATURES)
            ]
            if self.single_label_:
                self.vectorizers_.append(
                    TfidfVectorizer(
                        analyzer="char_wb",
                        ngram_range=(2, 5),
                        sublinear_tf=True,
                        max_features=MAX_TFIDF_FEATURES,
                    )
                )
            for v in self.vectorizers_:
                v.fit(texts)
        return hstack([v.transform(texts) for v in self.vectorizers_]).tocsr()

    def _features(self, texts: list[str], emb: np.ndarray, *, fit: bool = False):
        """[unit embedding | TF-IDF] as one sparse matrix (the single-label model's input)."""
        from scipy.sparse import csr_matrix, hstack

        dense = csr_matrix(unit_rows(np.asarray(emb, dtype=np.float64)))
        words = self._tfidf(texts, fit=fit)
        return dense if words is None else hstack([dense, words]).tocsr()

    def _phi(self, dense: np.ndarray, words):
        """[Nystroem RBF features | sqrt(TFIDF_WEIGHT) x TF-IDF]: their dot product approximates
        RBF(embeddings) + TFIDF_WEIGHT * linear(TF-IDF)."""
        from scipy.sparse import csr_matrix, hstack

        features = csr_matrix(self.feature_map_.transform(dense))
        return features if words is None else hstack([features, np.sqrt(TFIDF_WEIGHT) * words]).tocsr()

    def fit(
        self,
        texts: list[str],
        emb: np.ndarray,
        labels: list[set[str]],
        *,
        unit_ids: list[str] | None = None,
        extra: tuple[list[str], np.ndarray, list[str]] | None = None,
        groups: list[str] | None = None,
    ) -> FewShotCoder:
        """`extra`: (texts, embeddings, code) rows from the codebook, used as positives only.
        `groups`: each unit's transcript, so threshold calibration never validates on a
        transcript it trained on."""

        known = set(self.codes)
        labels = [set(s) & known for s in labels]
        coded = [s for s in labels if s]
        # (nearly) single-label data: one multinomial model; a unit with k codes gives k rows
        self.single_label_ = sum(len(s) > 1 for s in coded) <= SINGLE_LABEL_SHARE * len(coded)
        self.train_ids_ = list(unit_ids) if unit_ids is not None else [str(i) for i in range(len(texts))]
        self.train_emb_ = unit_rows(np.asarray(emb, dtype=np.float64))
        self.train_labels_ = labels
        self.code_rows_ = {c: r for c in self.codes if len(r := np.flatnonzero([c in s for s in labels]))}
        all_texts, all_emb = list(texts), np.asarray(emb)
        all_labels = list(labels)
        if extra is not None and len(extra[0]):
            all_texts += list(extra[0])
            all_emb = np.vstack([all_emb, extra[1]])
            all_labels += [{c} for c in extra[2]]
        if self.single_label_:
            rows = [r for r, s in enumerate(all_labels) for _ in range(max(len(s), 1))]
            y = np.array([c for s in all_labels for c in (sorted(s) or [NONE])])
            if len(set(y)) < 2:
                raise UserError("few-shot coding needs training units with at least two different codes")
            self.C_, self.tfidf_ = self._select(
                all_texts, all_emb, all_labels, n_human=len(texts), groups=groups
            )
            X = self._features(all_texts, all_emb, fit=True)
            self.model_ = self._single_label_model(self.C_).fit(X[rows], y)
            return self
        self.C_ = MULTI_LABEL_C if self.C == "auto" else float(self.C)
        self.tfidf_ = True if self.tfidf == "auto" else bool(self.tfidf)
        dense = unit_rows(np.asarray(all_emb, dtype=np.float64))
        words = self._tfidf(all_texts, fit=True)
        from sklearn.kernel_approximation import Nystroem

        # scikit-learn's "scale" gamma: 1 / (features x variance), independent of the embedding size
        gamma = 1.0 / max(dense.shape[1] * float(dense.var()), 1e-12)
        self.feature_map_ = Nystroem(
            gamma=gamma, n_components=min(NYSTROEM_COMPONENTS, len(dense)), random_state=self.seed
        ).fit(dense)
        X = self._phi(dense, words)
        Y = {c: np.array([c in s for s in all_labels], dtype=int) for c in self.codes}
        # never (or always) used in training: this coder cannot learn the code
        Y = {c: y for c, y in Y.items() if 0 < y.sum() < len(y)}
        self.models_ = {c: _binary_model(self.C_, self.seed).fit(X, y) for c, y in Y.items()}
        self.thresholds_ = self._calibrate(X, Y, n_human=len(texts), groups=groups)
        return self

    def _single_label_model(self, C: float):
        """Multinomial logistic regression, classes weighted by their inverse frequency (rare
        codes are not drowned by common ones; on skewed sets too, by measurement)."""
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=C, max_iter=3000, class_weight="balanced", random_state=self.seed)

    def _select(self, texts, emb, labels, *, n_human: int, groups) -> tuple[float, bool]:
        """(C, tfidf) for single-label data: the given values, or for each "auto" the one of
        `SELECT_CS` x (with, without TF-IDF) whose out-of-fold top code agrees best (Cohen's
        kappa) with the human units' codes, if it beats the first setting by `SELECT_MARGIN`.
        The codebook's rows (after the first `n_human`) train in every fold. Decided on the
        training units only."""
        from pipeline.kappa import cohen_kappa

        Cs = SELECT_CS if self.C == "auto" else (float(self.C),)
        words = (True, False) if self.tfidf == "auto" else (bool(self.tfidf),)
        if len(Cs) * len(words) == 1:
            return Cs[0], words[0]
        first = np.array([sorted(s)[0] if s else NONE for s in labels], dtype=object)
        extra = np.arange(n_human, len(labels))
        scores: dict[tuple[float, bool], float] = {}
        for tfidf in words:
            oof = {C: np.empty(n_human, dtype=object) for C in Cs}
            for tr, te in inner_folds(n_human, groups, seed=self.seed):
                fit_rows = np.concatenate([tr, extra])
                self.tfidf_ = tfidf
                X_fit = self._features([texts[i] for i in fit_rows], emb[fit_rows], fit=True)
                X_out = self._features([texts[i] for i in te], emb[te])
                rows = [j for j, r in enumerate(fit_rows) for _ in range(max(len(labels[r]), 1))]
                y = np.array([c for r in fit_rows for c in (sorted(labels[r]) or [NONE])])
                for C in Cs:
                    if len(set(y)) < 2:
                        oof[C][te] = y[0]
                        continue
                    oof[C][te] = self._single_label_model(C).fit(X_fit[rows], y).predict(X_out)
            for C in Cs:
                k = cohen_kappa(first[:n_human].astype(str), oof[C].astype(str))
                scores[(C, tfidf)] = -np.inf if k is None else k
        default = (Cs[0], words[0])
        best = max(scores, key=lambda key: scores[key])
        return best if scores[best] >= scores[default] + SELECT_MARGIN else default

    def _calibrate(self, X, Y: dict[str, np.ndarray], *, n_human: int, groups) -> dict:
        """Per code, the decision-value threshold that maximises out-of-fold kappa on the human
        units (the first `n_human` rows of X). 0, the SVM's own boundary, for a code with fewer
        than 3 positives or negatives among them, or missing from a fold's training rows.

        5 folds, grouped by transcript when there are 3 or more: models trained on 4/5 of the
        units score like the final model (with 3 folds the thresholds came out too low). The folds
        are shared by all codes, so each fold's rows are taken once."""
        human, extra = np.arange(n_human), np.arange(n_human, X.shape[0])
        folds = inner_folds(n_human, groups, seed=self.seed)
        usable = {c for c, y in Y.items() if 3 <= y[human].sum() <= n_human - 3}
        oof = {c: np.zeros(n_human) for c in usable}
        for tr, te in folds:
            rows = np.concatenate([human[tr], extra])
            X_fit, X_out = X[rows], X[human[te]]
            for c in sorted(usable):
                if len(set(Y[c][rows].tolist())) < 2:
                    usable.discard(c)
                    continue
                oof[c][te] = _binary_model(self.C_, self.seed).fit(X_fit, Y[c][rows]).decision_function(X_out)
        thresholds = dict.fromkeys(Y, 0.0)
        for c in usable:
            grid = np.unique(np.quantile(oof[c], np.linspace(0.02, 0.98, 49)))
            kappas = [binary_kappa(Y[c][human], (oof[c] >= t).astype(int)) for t in grid]
            thresholds[c] = float(grid[int(np.argmax([-1.0 if k is None else k for k in kappas]))])
        return thresholds

    def predict(self, unit_ids: list[str], texts: list[str], emb: np.ndarray) -> pd.DataFrame:
        """Long table segment_id, code, score, evidence. Multi-label scores are a logistic
        squash of the distance past the calibrated threshold: 0.5 at the threshold. Coded
        PREDICT_ROWS units at a time: the feature matrices' memory stays flat."""
        rows: list[tuple] = []
        for s in range(0, len(unit_ids), PREDICT_ROWS):
            part = slice(s, s + PREDICT_ROWS)
            rows += self._predict_rows(unit_ids[part], list(texts[part]), emb[part])
        return pd.DataFrame(rows, columns=["segment_id", "code", "score", "evidence"])

    def _predict_rows(self, unit_ids: list[str], texts: list[str], emb: np.ndarray) -> list[tuple]:
        unit_emb = unit_rows(np.asarray(emb, dtype=np.float64))
        hits: list[tuple[int, str, float]] = []  # (unit row, code, score)
        if self.single_label_:
            proba = self.model_.predict_proba(self._features(list(texts), emb))
            classes = list(self.model_.classes_)
            for i, best in enumerate(np.argmax(proba, axis=1).tolist()):
                if classes[best] != NONE:
                    hits.append((i, classes[best], float(proba[i, best])))
        else:
            X = self._phi(unit_emb, self._tfidf(list(texts)))
            margin = {c: m.decision_function(X) - self.thresholds_[c] for c, m in self.models_.items()}
            for i in range(len(unit_ids)):
                found = sorted(((d[i], c) for c, d in margin.items() if d[i] >= 0), reverse=True)
                hits += [(i, c, float(1 / (1 + np.exp(-d)))) for d, c in found[: self.max_codes]]
        evidence = self._evidence(unit_emb, hits)
        return [(unit_ids[i], c, score, e) for (i, c, score), e in zip(hits, evidence, strict=True)]

    def _evidence(self, unit_emb: np.ndarray, hits: list[tuple[int, str, float]]) -> list[str]:
        """Per (unit row, code) hit, the most similar training unit with that code. Compared code
        by code with the units given it, in blocks: never a units x training units matrix."""
        out = ["few-shot: learned from the codebook only"] * len(hits)
        by_code: dict[str, list[int]] = {}
        for h, (_, code, _) in enumerate(hits):
            by_code.setdefault(code, []).append(h)
        for code, hs in by_code.items():
            idx = self.code_rows_.get(code)
            if idx is None:
                continue
            train = self.train_emb_[idx]
            units = np.array([hits[h][0] for h in hs])
            step = max(1, EVIDENCE_BLOCK // len(idx))
            for start in range(0, len(units), step):
                sims = unit_emb[units[start : start + step]] @ train.T
                best = np.argmax(sims, axis=1)
                top = sims[np.arange(len(best)), best]
                for h, b, s in zip(hs[start : start + step], best, top, strict=True):
                    out[h] = f"few-shot: nearest coded unit {self.train_ids_[idx[b]]} ({s:.2f})"
        return out


def inner_folds(n: int, groups: list[str] | None, *, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """`CALIBRATION_FOLDS` folds of n units, grouped by transcript when there are 3 or more (a
    fold never validates on a transcript it trained on), else seeded."""
    from sklearn.model_selection import GroupKFold, KFold

    units = np.arange(n)
    n_groups = 0 if groups is None else len(set(groups))
    if n_groups >= 3:
        return list(GroupKFold(n_splits=min(CALIBRATION_FOLDS, n_groups)).split(units, groups=groups))
    return list(KFold(n_splits=min(CALIBRATION_FOLDS, n), shuffle=True, random_state=seed).split(units))


def _binary_model(C: float, seed: int):
    """One code's linear support-vector machine (squared hinge loss: as good as the plain hinge
    and far faster to fit on these features)."""
    from sklearn.svm import LinearSVC

    return LinearSVC(C=C, random_state=seed)


def codebook_rows(codebook: Codebook, *, embed: Embed) -> tuple[list[str], np.ndarray, list[str]]:
    """The codebook's views as labelled rows (texts, embeddings, code) for few-shot training."""
    views = code_views(codebook)
    texts = [t for _, _, t in views]
    return texts, np.asarray(embed(texts)), [c for c, _, _ in views]


# A fitted coder and the units it codes: ids, texts, features (one row per unit).
CodingJob = tuple[FewShotCoder, list[str], list[str], np.ndarray]
# Runs coding jobs, in order, to their long tables (e.g. on an engine's workers).
Predict = Callable[[Iterable[CodingJob]], list[pd.DataFrame]]


def predict_here(jobs: Iterable[CodingJob]) -> list[pd.DataFrame]:
    """Each job's codes, in this process, one fitted coder alive at a time."""
    return [coder.predict(ids, texts, emb) for coder, ids, texts, emb in jobs]


def few_shot(
    train_ids: list[str],
    train_texts: list[str],
    train_emb: np.ndarray,
    train_labels: list[set[str]],
    unit_ids: list[str],
    texts: list[str],
    embeddings: np.ndarray,
    codebook: Codebook,
    *,
    embed: Embed,
    options: CodingParams,
    seed: int = 0,
    train_groups: list[str] | None = None,
) -> pd.DataFrame:
    """Few-shot codes for `unit_ids` from a coder trained on the human-coded units."""
    coder = fit_few_shot(
        train_ids,
        train_texts,
        train_emb,
        train_labels,
        codebook,
        embed=embed,
        options=options,
        seed=seed,
        train_groups=train_groups,
    )
    return coder.predict(unit_ids, texts, embeddings)


def fit_few_shot(
    train_ids: list[str],
    train_texts: list[str],
    train_emb: np.ndarray,
    train_labels: list[set[str]],
    codebook: Codebook,
    *,
    embed: Embed,
    options: CodingParams,
    seed: int = 0,
    train_groups: list[str] | None = None,
    extra: tuple[list[str], np.ndarray, list[str]] | None = None,
) -> FewShotCoder:
    """A coder trained on the human-coded units (at most `coding.max_train` of them, a seeded
    sample: the solvers' time grows faster than the units) and the codebook's views
    (`codebook_rows`, encoded with `embed` unless given as `extra`)."""
    if len(train_texts) > options.max_train:
        keep = np.sort(np.random.default_rng(seed).choice(len(train_texts), options.max_train, replace=False))
        train_ids, train_texts, train_labels = (
            [v[i] for i in keep] for v in (train_ids, train_texts, train_labels)
        )
        train_emb = np.asarray(train_emb)[keep]
        train_groups = None if train_groups is None else [train_groups[i] for i in keep]
    coder = FewShotCoder(
        [c.code_id for c in codebook.leaves],
        C=options.C,
        tfidf=options.tfidf,
        max_codes=options.max_codes,
        seed=seed,
    )
    extra_texts, extra_emb, extra_codes = extra or codebook_rows(codebook, embed=embed)
    copies = np.asarray(train_emb).shape[1] // extra_emb.shape[1]
    if copies > 1:  # units carry context (turn, question): a codebook view is its own context
        extra_texts = [" || ".join([t] * copies) for t in extra_texts]
        extra_emb = np.hstack([extra_emb] * copies)
    coder.fit(
        train_texts,
        train_emb,
        train_labels,
        unit_ids=train_ids,
        extra=(extra_texts, extra_emb, extra_codes),
        groups=train_groups,
    )
    return coder
