//! The wasmtime engine behind an executor: its configuration (pooling,
//! fuel, epochs, stack) and its compatibility fingerprint. The epoch ticker
//! that drives deadlines is `ticker`.

use super::*;

pub(super) fn engine_config(config: &ExecutorConfig) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(config.max_wasm_stack)
        .async_stack_size(config.max_wasm_stack + 1024 * 1024)
        // Wasm-offset maps only serve backtraces, which we do not show; without
        // them a .cwasm is much smaller and deserializes faster.
        .generate_address_map(false)
        .memory_init_cow(false);
    if config.pooling {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.pool_instances)
            .total_core_instances(config.pool_instances * 4)
            .total_memories(config.pool_instances * 2)
            .total_tables(config.pool_instances * 4)
            .total_stacks(config.pool_instances)
            // Reset a reused slot's memory in place (memset, guided by
            // PAGEMAP_SCAN where the kernel has it) instead of madvise: no page
            // faults or TLB shootdowns on the next instantiation.
            .linear_memory_keep_resident(4 * 1024 * 1024)
            .table_keep_resident(64 * 1024)
            .async_stack_keep_resident(128 * 1024)
            .pagemap_scan(Enabled::Auto);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    c
}

/// The engine's compatibility fingerprint (see [`Executor::engine_fingerprint`]).
pub(super) fn fingerprint(engine: &Engine) -> String {
    let mut hasher = ShaHasher(sha2::Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(hasher.0.finalize())
}

/// Feeds `Hash` output into sha256 (for the engine fingerprint).
struct ShaHasher(sha2::Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
