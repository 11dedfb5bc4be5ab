#![no_main]

#[global_allocator]
static ALLOC: ferry_fuzz::Limited = ferry_fuzz::Limited;

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_proto::fuzz::hello(data));
