#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_proto::fuzz::client_msg(data));
