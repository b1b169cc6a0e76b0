//! Devices whose session ends leave every group: `logout`, `sessions
//! --revoke` and `devices --remove` retire the device, the members of its
//! rooms remove it from the MLS group with their next commit (the server
//! checks that the commit removes exactly those leaves), rooms made later do
//! not get it, retired devices do not count toward the device cap, and a home
//! that logs in again starts a new device. All through the real binary.

use crate::{PASSWORD, bin, server};
use conclave_testkit::{Backend, Home, backend_tests};
use serde_json::Value;

backend_tests!(
    logged_out_revoked_and_removed_devices_leave_every_group,
    retired_devices_do_not_count_toward_the_device_cap,
);

/// The device ids `user` has in `room`'s group, as the server lists them.
fn devices_in(home: &Home, room: &str, user: &str) -> Vec<i64> {
    let members = home.run(&["room", "members", room, "--json"], None).ok().json();
    let member = members.as_array().expect("members array").iter().find(|m| m["username"] == user);
    member.map_or_else(Vec::new, |m| {
        m["devices"].as_array().expect("devices").iter().map(|d| d.as_i64().expect("device id")).collect()
    })
}

/// `devices --json` of a home: (id, current) pairs.
fn device_list(home: &Home) -> Vec<(i64, bool)> {
    let list = home.run(&["devices", "--json"], None).ok().json();
    list.as_array()
        .expect("devices array")
        .iter()
        .map(|d| (d["id"].as_i64().expect("id"), d["current"].as_bool().expect("current")))
        .collect()
}

/// The id of the home's current device.
fn current_device(home: &Home) -> i64 {
    device_list(home).into_iter().find(|(_, current)| *current).expect("a current device").0
}

/// Alice catches up in `room` (her client commits the removal of retired
/// devices there) and says something.
fn alice_speaks(alice: &Home, room: &str, text: &str) {
    alice.run(&["send", room, text], None).ok();
}

/// Bob uses a second and third home; each ends a different way. Each time
/// the device leaves both rooms' groups once Alice's client has caught up,
/// and what Alice sends afterwards is still read by Bob's remaining device.
async fn logged_out_revoked_and_removed_devices_leave_every_group(backend: Backend) {
    let server = server(backend, &[]).await;
    let (alice, laptop) = (Home::new(bin()), Home::new(bin()));
    alice.register(&server, "alice", PASSWORD);
    let bob = laptop.register(&server, "bob", PASSWORD);
    alice.run(&["room", "create", "team"], None).ok();
    alice.run(&["room", "invite", "team", "bob"], None).ok();
    laptop.run(&["history", "#team"], None).ok();
    let laptop_device = current_device(&laptop);
    let laptop_listens = laptop.spawn(&["listen"]);
    let shown = |what: &str| {
        laptop_listens.wait_for(60, |line| line.contains(what)).unwrap_or_else(|| {
            panic!("bob's listen never showed {what:?}; stderr:\n{}", laptop_listens.stderr())
        })
    };

    // 1. logout.
    let phone = Home::new(bin());
    phone.login_recovery(&server, "bob", PASSWORD, &bob.recovery_codes[0]).ok();
    phone.run(&["history", "#team"], None).ok();
    let phone_device = current_device(&phone);
    assert_ne!(phone_device, laptop_device);
    alice_speaks(&alice, "#team", "hello both");
    assert_eq!(devices_in(&alice, "team", "bob"), [laptop_device, phone_device]);
    assert_eq!(devices_in(&alice, "lobby", "bob"), [laptop_device, phone_device]);
    phone.run(&["logout"], None).ok();
    let listed: Vec<i64> = device_list(&laptop).into_iter().map(|(id, _)| id).collect();
    assert_eq!(listed, [laptop_device], "a logged-out device is not listed");
    alice_speaks(&alice, "#team", "after the phone left");
    alice_speaks(&alice, "#lobby", "lobby after the phone left");
    assert_eq!(devices_in(&alice, "team", "bob"), [laptop_device], "removed from the room's group");
    assert_eq!(devices_in(&alice, "lobby", "bob"), [laptop_device], "and from the lobby's");
    let history = laptop.run(&["history", "#team", "--json"], None).ok();
    assert!(history.stdout.contains("after the phone left"), "{}", history.stdout);
    // Members are shown the departure and the removal.
    shown(&format!("team: bob's device {phone_device} was signed out"));
    shown(&format!("team: alice removed signed-out device(s) bob/{phone_device}"));

    // A room made afterwards gets only the devices still in use.
    alice.run(&["room", "create", "later"], None).ok();
    alice.run(&["room", "invite", "later", "bob"], None).ok();
    assert_eq!(devices_in(&alice, "later", "bob"), [laptop_device]);

    // 2. Logging in again on the same home is a new device.
    phone.login_recovery(&server, "bob", PASSWORD, &bob.recovery_codes[1]).ok();
    phone.run(&["history", "#team"], None).ok();
    let second_phone_device = current_device(&phone);
    assert_ne!(second_phone_device, phone_device, "a retired device never comes back");
    alice_speaks(&alice, "#team", "welcome back");
    assert_eq!(devices_in(&alice, "team", "bob"), [laptop_device, second_phone_device]);
    let phone_reads = phone.run(&["history", "#team", "--json"], None).ok();
    assert!(phone_reads.stdout.contains("welcome back"), "{}", phone_reads.stdout);

    // 3. sessions --revoke from the laptop.
    let sessions = laptop.run(&["sessions", "--json"], None).ok().json();
    let other: Vec<&Value> =
        sessions.as_array().expect("sessions").iter().filter(|s| s["current"] == false).collect();
    assert_eq!(other.len(), 1, "{sessions}");
    let session = other[0]["id"].as_str().expect("session id").to_owned();
    laptop.run(&["sessions", "--revoke", &session], None).ok();
    alice_speaks(&alice, "#team", "after the revocation");
    assert_eq!(devices_in(&alice, "team", "bob"), [laptop_device]);
    let ended = phone.run(&["history", "#team"], None).fails();
    assert!(ended.stderr.contains("log in"), "{}", ended.stderr);

    // 4. devices --remove from the laptop, of a third home.
    let tablet = Home::new(bin());
    tablet.login_recovery(&server, "bob", PASSWORD, &bob.recovery_codes[2]).ok();
    tablet.run(&["history", "#team"], None).ok();
    let tablet_device = current_device(&tablet);
    alice_speaks(&alice, "#team", "hi tablet");
    assert_eq!(devices_in(&alice, "team", "bob"), [laptop_device, tablet_device]);
    let own = laptop.run(&["devices", "--remove", &laptop_device.to_string()], None).fails();
    assert!(own.stderr.contains("log out instead") && own.stderr.contains("(bad_request)"), "{}", own.stderr);
    let unknown = laptop.run(&["devices", "--remove", "999999"], None).fails();
    assert!(unknown.stderr.contains("(not_found)"), "{}", unknown.stderr);
    laptop.run(&["devices", "--remove", &tablet_device.to_string()], None).ok();
    alice_speaks(&alice, "#team", "after the removal");
    alice_speaks(&alice, "#lobby", "lobby after the removal");
    assert_eq!(devices_in(&alice, "team", "bob"), [laptop_device]);
    assert_eq!(devices_in(&alice, "lobby", "bob"), [laptop_device]);
    let removed = tablet.run(&["history", "#team"], None).fails();
    assert!(removed.stderr.contains("log in"), "the removed device's session ended: {}", removed.stderr);
    let listed: Vec<i64> = device_list(&laptop).into_iter().map(|(id, _)| id).collect();
    assert_eq!(listed, [laptop_device]);

    // Bob's laptop read everything Alice sent, and shows every removal.
    let history = laptop.run(&["history", "#team", "--json"], None).ok();
    for text in ["after the phone left", "welcome back", "after the revocation", "after the removal"] {
        assert!(history.stdout.contains(text), "{text}: {}", history.stdout);
    }
    shown(&format!("team: alice removed signed-out device(s) bob/{tablet_device}"));
}

/// With a cap of two devices, a home logs in and out again and again: each
/// login is a new device, and retired ones make room for it. Two devices in
/// use at once still fill the cap.
async fn retired_devices_do_not_count_toward_the_device_cap(backend: Backend) {
    let server = server(backend, &["--max-devices-per-account", "2"]).await;
    let laptop = Home::new(bin());
    let bob = laptop.register(&server, "bob", PASSWORD);
    laptop.run(&["history", "#lobby"], None).ok();
    let phone = Home::new(bin());
    let mut seen = vec![current_device(&laptop)];
    for code in &bob.recovery_codes[..4] {
        phone.login_recovery(&server, "bob", PASSWORD, code).ok();
        phone.run(&["history", "#lobby"], None).ok();
        let device = current_device(&phone);
        assert!(!seen.contains(&device), "each login on the home is a new device");
        seen.push(device);
        phone.run(&["logout"], None).ok();
    }
    phone.login_recovery(&server, "bob", PASSWORD, &bob.recovery_codes[4]).ok();
    phone.run(&["history", "#lobby"], None).ok();
    let third = Home::new(bin());
    let full = third.login_recovery(&server, "bob", PASSWORD, &bob.recovery_codes[5]).fails();
    assert!(full.stderr.contains("(quota_exceeded)"), "{}", full.stderr);
}
