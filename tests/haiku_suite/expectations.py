# ruff: noqa: E501
"""Which comparable dm-haiku tests are not expected to pass under `pax.hk`.

Keys are fnmatch patterns over node ids relative to dm-haiku's ``_src``
(``basic_test.py::LinearTest::test_call*``); values give the reason, grouped
under a comment per reason.

* `NEEDS_INTERNAL`: the test needs a dm-haiku internal with no public path
  (``haiku._src.stateful.jit``, ``base.new_context``...), so it cannot be
  run against `pax.hk`; it is excluded and not counted.
* `KNOWN_FAILURES`: the test exercises public behaviour `pax.hk` does not
  (yet) reproduce; the redesign should drive this list down. A listed test
  that passes is reported as "now passing" so its entry can be removed.

A comparable test that fails under `pax.hk` and matches neither table fails
the harness's tests (`test_haiku_suite`).
"""

NEEDS_INTERNAL: dict[str, str] = {
    # uses haiku._src.stateful.jit
    "integration/hk_transforms_test.py::HaikuTransformsTest::test_hk_jit_*": "uses haiku._src.stateful.jit",
    "nets/vqvae_test.py::VqvaeTest::testEmaUpdating0": "uses haiku._src.stateful.jit",
    "stateful_test.py::StatefulTest::test_fori_traced_length": "uses haiku._src.stateful.jit",
    "stateful_test.py::StatefulTest::test_jit": "uses haiku._src.stateful.jit",
    "stateful_test.py::StatefulTest::test_jit_no_transform": "uses haiku._src.stateful.jit",
    "stateful_test.py::StatefulTest::test_safe_use_of_jax_get_parameter_jit": "uses haiku._src.stateful.jit",
    "stateful_test.py::StatefulTest::test_safe_use_of_jax_get_state_jit": "uses haiku._src.stateful.jit",
    "stateful_test.py::StatefulTest::test_safe_use_of_jax_next_rng_key_jit": "uses haiku._src.stateful.jit",
    "stateful_test.py::StatefulTest::test_safe_use_of_jax_next_rng_keys_jit": "uses haiku._src.stateful.jit",
    "stateful_test.py::StatefulTest::test_safe_use_of_jax_replace_rng_sequence_state_jit": "uses haiku._src.stateful.jit",
    "stateful_test.py::StatefulTest::test_safe_use_of_jax_reserve_rng_keys_jit": "uses haiku._src.stateful.jit",
    "stateful_test.py::StatefulTest::test_safe_use_of_jax_set_state_jit": "uses haiku._src.stateful.jit",
    "stateful_test.py::StatefulTest::test_safe_use_of_jax_with_rng_jit": "uses haiku._src.stateful.jit",
    # uses haiku._src.base.new_context
    "base_test.py::BaseTest::test_assert_no_new_parameters": "uses haiku._src.base.new_context",
    "base_test.py::BaseTest::test_context_*": "uses haiku._src.base.new_context",
    "base_test.py::BaseTest::test_creator_types*": "uses haiku._src.base.new_context",
    "base_test.py::BaseTest::test_custom_*": "uses haiku._src.base.new_context",
    "base_test.py::BaseTest::test_do_not_store": "uses haiku._src.base.new_context",
    "base_test.py::BaseTest::test_get_parameter_*": "uses haiku._src.base.new_context",
    "base_test.py::BaseTest::test_get_state_*": "uses haiku._src.base.new_context",
    "base_test.py::BaseTest::test_getter_types*": "uses haiku._src.base.new_context",
    "base_test.py::BaseTest::test_init_*": "uses haiku._src.base.new_context",
    "base_test.py::BaseTest::test_invalid_rng": "uses haiku._src.base.new_context",
    "base_test.py::BaseTest::test_invalid_rng_none_ignored": "uses haiku._src.base.new_context",
    "base_test.py::BaseTest::test_naked_parameter_in_tilde_collection": "uses haiku._src.base.new_context",
    "base_test.py::BaseTest::test_nested_*": "uses haiku._src.base.new_context",
    "base_test.py::BaseTest::test_new_*": "uses haiku._src.base.new_context",
    "base_test.py::BaseTest::test_original_*": "uses haiku._src.base.new_context",
    "base_test.py::BaseTest::test_parameter_in_*": "uses haiku._src.base.new_context",
    "base_test.py::BaseTest::test_params": "uses haiku._src.base.new_context",
    "base_test.py::BaseTest::test_set_then_get": "uses haiku._src.base.new_context",
    "base_test.py::BaseTest::test_setter_array": "uses haiku._src.base.new_context",
    "base_test.py::BaseTest::test_setter_tree": "uses haiku._src.base.new_context",
    "base_test.py::BaseTest::test_stateful": "uses haiku._src.base.new_context",
    "base_test.py::BaseTest::test_with_rng0": "uses haiku._src.base.new_context",
    "base_test.py::BaseTest::test_with_rng1": "uses haiku._src.base.new_context",
    "module_test.py::ModuleTest::test_dataclass*": "uses haiku._src.base.new_context",
    # uses haiku._src.summarise.tabulate_lib
    "summarise_test.py::TabulateTest::test_config_column": "uses haiku._src.summarise.tabulate_lib",
    "summarise_test.py::TabulateTest::test_equivalent_*": "uses haiku._src.summarise.tabulate_lib",
    "summarise_test.py::TabulateTest::test_filters_no_output": "uses haiku._src.summarise.tabulate_lib",
    "summarise_test.py::TabulateTest::test_includes_no_param_modules": "uses haiku._src.summarise.tabulate_lib",
    "summarise_test.py::TabulateTest::test_invalid_*": "uses haiku._src.summarise.tabulate_lib",
    "summarise_test.py::TabulateTest::test_jax_*": "uses haiku._src.summarise.tabulate_lib",
    "summarise_test.py::TabulateTest::test_module_column": "uses haiku._src.summarise.tabulate_lib",
    "summarise_test.py::TabulateTest::test_output_column_structured": "uses haiku._src.summarise.tabulate_lib",
    "summarise_test.py::TabulateTest::test_owned_*": "uses haiku._src.summarise.tabulate_lib",
    "summarise_test.py::TabulateTest::test_params_*": "uses haiku._src.summarise.tabulate_lib",
    # uses haiku._src.base.params_frozen
    "stateful_test.py::StatefulTest::test_rng_in_cond_fails": "uses haiku._src.base.params_frozen",
    "stateful_test.py::StatefulTest::test_safe_use_of_jax_get_parameter_while_loop": "uses haiku._src.base.params_frozen",
    "stateful_test.py::StatefulTest::test_safe_use_of_jax_get_state_while_loop": "uses haiku._src.base.params_frozen",
    "stateful_test.py::StatefulTest::test_safe_use_of_jax_next_rng_key_while_loop": "uses haiku._src.base.params_frozen",
    "stateful_test.py::StatefulTest::test_safe_use_of_jax_next_rng_keys_while_loop": "uses haiku._src.base.params_frozen",
    "stateful_test.py::StatefulTest::test_safe_use_of_jax_replace_rng_sequence_state_while_loop": "uses haiku._src.base.params_frozen",
    "stateful_test.py::StatefulTest::test_safe_use_of_jax_set_state_while_loop": "uses haiku._src.base.params_frozen",
    "stateful_test.py::StatefulTest::test_safe_use_of_jax_with_rng_while_loop": "uses haiku._src.base.params_frozen",
    "stateful_test.py::StatefulTest::test_updating_state_in_cond_fails": "uses haiku._src.base.params_frozen",
    "stateful_test.py::StatefulTest::test_while_loop_with_*": "uses haiku._src.base.params_frozen",
    # uses haiku._src.utils.replicate
    "utils_test.py::ReplicateTest::*": "uses haiku._src.utils.replicate",
    # uses haiku._src.config.Config
    "config_test.py::ConfigTest::*": "uses haiku._src.config.Config",
    # uses haiku._src.stateful.internal_state
    "stateful_test.py::StatefulTest::test_difference_*": "uses haiku._src.stateful.internal_state",
    "stateful_test.py::StatefulTest::test_temporary_state_resets_names": "uses haiku._src.stateful.internal_state",
    # uses haiku._src.conv.compute_adjust
    "conv_test.py::ConvTransposeTest::test_compute_*": "uses haiku._src.conv.compute_adjust",
    # uses a haiku._src internal as a context manager
    "module_test.py::ModuleTest::test_callback_runs_after_submodules_updated": "uses a haiku._src internal as a context manager",
    "module_test.py::ModuleTest::test_context_reuse_same_instance": "uses a haiku._src internal as a context manager",
    "module_test.py::ModuleTest::test_method_hook": "uses a haiku._src internal as a context manager",
    # uses haiku._src.basic.merge_leading_dims
    "basic_test.py::BasicTest::test_merge_*": "uses haiku._src.basic.merge_leading_dims",
    # uses haiku._src.basic.split_leading_dim
    "basic_test.py::BasicTest::test_split_*": "uses haiku._src.basic.split_leading_dim",
    # uses haiku._src.flax.utils.flatten_flax_to_haiku
    "flax/utils_test.py::UtilsTest::*": "uses haiku._src.flax.utils.flatten_flax_to_haiku",
    # uses haiku._src.data_structures.FlatMap
    "filtering_test.py::FilteringTest::test_output_type_default": "uses haiku._src.data_structures.FlatMap",
    # uses haiku._src.initializers._compute_fans
    "initializers_test.py::InitializersTest::test_compute_fans": "uses haiku._src.initializers._compute_fans",
    # uses haiku._src.basic.hk
    "layer_stack_test.py::LayerStackTest::test_parameter_reuse": "uses haiku._src.basic.hk",
    # uses haiku._src.mixed_precision.reset_thread_local_state_for_test
    "mixed_precision_test.py::MixedPrecisionTest::test_policy_with_interceptor": "uses haiku._src.mixed_precision.reset_thread_local_state_for_test",
    # uses haiku._src.config.get_config
    "module_test.py::ModuleTest::test_attr_disable_auto_repr": "uses haiku._src.config.get_config",
    # uses haiku._src.utils.auto_repr
    "utils_test.py::UtilsTest::test_auto_repr": "uses haiku._src.utils.auto_repr",
    # uses haiku._src.utils.format_array
    "utils_test.py::UtilsTest::test_format_array": "uses haiku._src.utils.format_array",
    # uses haiku._src.utils.format_bytes
    "utils_test.py::UtilsTest::test_format_bytes": "uses haiku._src.utils.format_bytes",
    # uses haiku._src.utils.indent
    "utils_test.py::UtilsTest::test_indent": "uses haiku._src.utils.indent",
    # checks dm-haiku's internal module layout (`haiku._src.<module>.hk`)
    "integration/shim_hk_test.py::*": "checks dm-haiku's internal module layout (`haiku._src.<module>.hk`)",
}

KNOWN_FAILURES: dict[str, str] = {
    # the test switches on dm-haiku's internal flag
    # `haiku._src.layer_norm.ERROR_IF_PARAM_AXIS_NOT_EXPLICIT` (no public path;
    # setting it on the harness's shim cannot reach pax.hk)
    "layer_norm_test.py::LayerNormTest::test_param_axis_required_*": "uses haiku._src.layer_norm.ERROR_IF_PARAM_AXIS_NOT_EXPLICIT (internal flag)",
    # BatchNorm: eps cast with integer/scalar inputs fails
    "batch_norm_test.py::BatchNormTest::test_eps_cast_to_var_dtype": "BatchNorm: eps cast with integer/scalar inputs fails",
    # unsupported: BatchNorm cross-replica `cross_replica_axis_index_groups`
    "batch_norm_test.py::BatchNormTest::test_simple_training_cross_replica_axis": "unsupported: BatchNorm cross-replica `cross_replica_axis_index_groups`",
    # unsupported: array-valued `decay` in VectorQuantizerEMA
    "nets/vqvae_test.py::VqvaeTest::testEmaCrossReplica": "unsupported: array-valued `decay` in VectorQuantizerEMA",
    "nets/vqvae_test.py::VqvaeTest::testEmaUpdating1": "unsupported: array-valued `decay` in VectorQuantizerEMA",
}
