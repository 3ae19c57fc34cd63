"""Paired statistics as pure functions: tests, bootstrap CIs, power / MDE, Holm, ``compare``.

Every function compares ``b`` against ``a`` on the same examples: differences are
``b - a`` and ``alternative="less"`` asks whether ``b`` scores lower. Numbers come from
scipy; where scipy's statistic is undefined the documented convention is stated in the
result's ``note``.
"""

from harness.stats._inputs import is_binary
from harness.stats.comparison import Comparison, compare
from harness.stats.corpus import compare_corpus
from harness.stats.margin import (
    MarginTest,
    corpus_margin_test,
    margin_arrays,
    margin_test,
    t_margin_arrays,
)
from harness.stats.multiple import holm
from harness.stats.paired_binary import (
    tango_bounds,
    tango_margin_arrays,
    tango_mde,
    tango_sample_size,
)
from harness.stats.paired_tests import (
    MCNEMAR_EXACT_BELOW,
    mcnemar,
    paired_ttest,
    permutation_test,
    wilcoxon,
)
from harness.stats.power import mcnemar_mde, mcnemar_power, mde, paired_power
from harness.stats.resampling import paired_bootstrap, paired_bootstrap_corpus, resample_counts
from harness.stats.results import BootstrapResult, PairedTestResult

__all__ = [
    "MCNEMAR_EXACT_BELOW",
    "BootstrapResult",
    "Comparison",
    "MarginTest",
    "PairedTestResult",
    "compare",
    "compare_corpus",
    "corpus_margin_test",
    "holm",
    "is_binary",
    "margin_arrays",
    "margin_test",
    "mcnemar",
    "mcnemar_mde",
    "mcnemar_power",
    "mde",
    "paired_bootstrap",
    "paired_bootstrap_corpus",
    "paired_power",
    "paired_ttest",
    "permutation_test",
    "resample_counts",
    "t_margin_arrays",
    "tango_bounds",
    "tango_margin_arrays",
    "tango_mde",
    "tango_sample_size",
    "wilcoxon",
]
