use std::time::Instant;
fn main() {
    let bytes = std::fs::read(std::env::args().nth(1).unwrap()).unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        let r = zag_resumed::store::replay(&bytes);
        let t1 = t.elapsed();
        let t = Instant::now();
        drop(r);
        println!("replay {t1:?} drop {:?}", t.elapsed());
    }
}
