"""The poster's analyses: standard vs accelerated, residual traces, the m trade-off, the report."""

from .compare import compare, results_table
from .residuals import residual_study
from .m_tradeoff import m_tradeoff
from .report import write_report

__all__ = ["compare", "results_table", "residual_study", "m_tradeoff", "write_report"]
