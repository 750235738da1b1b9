use super::*;

#[test]
fn placeholder() {
    println!("{}", crd_yaml());
}
