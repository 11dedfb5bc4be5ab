#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_proto::fuzz::scram_client_final(data));
