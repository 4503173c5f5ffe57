//! The link shaper over a real loopback socket: the receiver's arrival times follow a synthetic
//! trace (80 kbit/s, then 400 kbit/s, the switch falling inside one send), and the shaper's
//! deadline arithmetic agrees with the link model's `bytes_within`.

use clio::trace::BandwidthTrace;
use clio_runtime::device::clock::TraceClock;
use clio_runtime::device::shaper::LinkShaper;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

/// 80 kbit/s for 0.5 s, then 400 kbit/s.
fn two_step() -> BandwidthTrace {
    BandwidthTrace::parse("0 0.08\n0.5 0.4\n10 0.4\n", "two-step", 1.0).unwrap()
}

/// Receives everything, returning (seconds since `t0`, bytes so far) after every read.
fn receiver(listener: TcpListener, t0: Instant) -> std::thread::JoinHandle<Vec<(f64, usize)>> {
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = vec![];
        let mut total = 0;
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n;
            got.push((t0.elapsed().as_secs_f64(), total));
        }
        got
    })
}

/// When the receiver had seen `bytes` bytes.
fn arrival(log: &[(f64, usize)], bytes: usize) -> f64 {
    log.iter().find(|(_, n)| *n >= bytes).map(|(t, _)| *t).unwrap()
}

#[test]
fn arrivals_follow_the_trace_rate() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t0 = Instant::now();
    let rx = receiver(listener, t0);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    // No set-up latency, 25 % framing overhead: 80 kbit/s carries 8 kB/s of payload, 400 kbit/s
    // 40 kB/s. 0.5 s at the slow rate = 4000 bytes, then 12000 bytes in 0.3 s.
    let mut sh = LinkShaper::with_params(two_step(), 0.0, 0.25, TraceClock::new(t0, 0.0));
    let first = sh.send(&mut s, &[7u8; 3000]).unwrap();
    // This send straddles the change at 0.5 s.
    let second = sh.send(&mut s, &[9u8; 13000]).unwrap();
    drop(s);
    let log = rx.join().unwrap();
    assert_eq!(log.last().unwrap().1, 16000);
    // The first send starts when it is called (a millisecond or so after t0).
    assert!((first.end_s - first.start_s - 0.375).abs() < 1e-9, "{first:?}");
    // It ends when the trace has carried all 16000 bytes (later only if it was called late).
    assert!((0.8 - 1e-6..0.83).contains(&second.end_s), "{second:?}");
    // (bytes, when the trace-rate link delivers them): 8 kB/s until 0.5 s, then 40 kB/s.
    // Early is the shaper's fault and is held to 2 ms. Late can also be the machine's (a sleeping
    // sender woken late while other jobs load both cores: once 10 % was exceeded that way), so
    // lateness gets 25 % or 30 ms: a shaper running at even 3/4 of the trace rate still fails.
    for (bytes, want) in [(1000, 0.125), (3000, 0.375), (4000, 0.5), (8000, 0.6), (12000, 0.7), (16000, 0.8)] {
        let got = arrival(&log, bytes);
        let late = f64::max(0.25 * want, 0.03);
        assert!(
            got <= want + late,
            "byte {bytes} arrived at {got:.4} s, the trace delivers it at {want} s (late by more than {late} s)"
        );
        // Never early: a byte cannot beat the link.
        assert!(got >= want - 0.002, "byte {bytes} arrived early: {got:.4} s < {want} s");
    }
    // Mid-way through the slow phase the receiver has at most the 2000 bytes the link carries by
    // then, and not much less.
    let at_quarter = log.iter().filter(|(t, _)| *t <= 0.25).map(|(_, n)| *n).max().unwrap_or(0);
    assert!((1500..=2000).contains(&at_quarter), "{at_quarter} bytes by 0.25 s, 2000 expected");
}

#[test]
fn set_up_latency_is_paid_once_per_request() {
    let link = clio_targets::load_link("ble").unwrap();
    let trace = BandwidthTrace::parse("0 0.2\n100 0.2\n", "flat", 1.0).unwrap();
    let mut sh = LinkShaper::new(trace, link.as_ref(), TraceClock::starting_now(0.0));
    let mut sink = Vec::new();
    let a = sh.send(&mut sink, &[0u8; 100]).unwrap();
    let b = sh.send(&mut sink, &[0u8; 100]).unwrap();
    sh.begin_request();
    let c = sh.send(&mut sink, &[0u8; 10]).unwrap();
    assert_eq!(sink.len(), 210);
    assert!((a.setup_s - 0.0075).abs() < 1e-12 && b.setup_s == 0.0 && (c.setup_s - 0.0075).abs() < 1e-12);
    // BLE: 10 % framing overhead on 100 bytes at 200 kbit/s = 4.4 ms; the second send follows on.
    assert!((a.end_s - a.start_s - 0.0044).abs() < 1e-9, "{a:?}");
    // (Not before a ends; after it by no more than a loaded machine's wake-up delay.)
    assert!(b.start_s >= a.end_s - 1e-9 && b.start_s - a.end_s < 0.02, "{a:?} {b:?}");
    assert!((a.wire_bits - 880.0).abs() < 1e-9);
}

#[test]
fn deadlines_agree_with_the_link_model() {
    let link = clio_targets::load_link("ble").unwrap();
    for bw in [20e3, 81e3, 250e3, 650e3] {
        let trace = BandwidthTrace::parse(&format!("0 {}\n1000 {}\n", bw / 1e6, bw / 1e6), "flat", 1.0).unwrap();
        let sh = LinkShaper::new(trace, link.as_ref(), TraceClock::starting_now(0.0));
        for budget in [0.005, 0.0925, 0.3] {
            let n = link.bytes_within(budget, bw) as usize;
            let t = 10.0;
            // Within the budget exactly as many bytes as the model says, and not one more.
            assert!(sh.delivery_end(t, n, true) <= t + budget + 1e-12, "bw {bw}, budget {budget}, {n} bytes");
            assert!(sh.delivery_end(t, n + 1, true) > t + budget, "bw {bw}, budget {budget}, {} bytes", n + 1);
            // And the time for n bytes is the model's transfer time.
            if n > 0 {
                let want = link.transfer_time_s(n as u64, bw);
                assert!((sh.delivery_end(t, n, true) - t - want).abs() < 1e-9);
            }
        }
    }
    // can_finish_by: the link is free now, so it is delivery_end from now.
    let trace = BandwidthTrace::parse("0 0.1\n1000 0.1\n", "flat", 1.0).unwrap();
    let clock = TraceClock::starting_now(0.0);
    let sh = LinkShaper::new(trace, link.as_ref(), clock);
    let n = link.bytes_within(0.0925, 100e3) as usize;
    assert!(sh.can_finish_by(n, clock.now() + 0.0925 + 0.005));
    assert!(!sh.can_finish_by(n + 200, clock.now() + 0.0925));
}

#[test]
fn delivery_integrates_across_trace_samples() {
    let trace = BandwidthTrace::parse("0 0.1\n1 0\n2 0.3\n3 0.3\n", "steps", 1.0).unwrap();
    let sh = LinkShaper::with_params(trace, 0.0, 0.0, TraceClock::starting_now(0.0));
    // 0.5 s at 100 kbit/s, then a silent second, then 300 kbit/s: 80 kbit = 50 k + 30 k -> t = 2.1 s.
    assert!((sh.deliver_time(0.5, 80e3) - 2.1).abs() < 1e-9);
    // Past the last sample the last bandwidth holds.
    assert!((sh.deliver_time(3.0, 300e3) - 4.0).abs() < 1e-9);
    let dead = BandwidthTrace::parse("0 0.1\n1 0\n", "dead", 1.0).unwrap();
    let sh = LinkShaper::with_params(dead, 0.0, 0.0, TraceClock::starting_now(0.0));
    assert!(sh.deliver_time(0.5, 1e6).is_infinite());
}
