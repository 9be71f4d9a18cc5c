"""Analysis tools: closed-form QIF dynamics (`dynamics`), single-neuron simulations and
figures (`neuron`, `figures`), the surrogate gradient-mismatch measurement (`mismatch`),
per-layer monitors, op counts and energy (`monitor`, `energy`), activity and training plots
(`plots`), a study's statistics, table and figures (`study`, `study_plots`). CLI: `quadfire analyze` and `quadfire plot` (`commands`). See docs/analysis.md."""
