#[cfg(test)]
mod t {
    use toml::de::{DeTable, DeValue};
    fn dump(src: &str, v: &toml::Spanned<DeValue>, ind: usize) {
        let r = v.span();
        println!("{:ind$}VALUE {:?} {:?}", "", r, &src[r.clone()].chars().take(40).collect::<String>(), ind = ind);
        match v.get_ref() {
            DeValue::Table(t) => for (k, v) in t.iter() {
                println!("{:ind$}KEY {:?} {:?}", "", k.span(), k.get_ref(), ind = ind + 2);
                dump(src, v, ind + 4);
            },
            DeValue::Array(a) => for v in a.iter() { dump(src, v, ind + 4) },
            _ => {}
        }
    }
    #[test]
    fn spans() {
        let src = "[image]\nname = \"web\"\n\n[packages]\ninstall = [\"a\", \"b\"]\n\n[[files]]\nsrc = \"x\"\n\n[[files]]\nsrc = \"y\"\n[base]\ndisk.size = 3\n";
        let t = DeTable::parse(src).unwrap();
        let v = toml::Spanned::new(t.span(), DeValue::Table(t.into_inner()));
        dump(src, &v, 0);
        let e = DeTable::parse("a = 1\nb = \n").unwrap_err();
        println!("{:?} {:?}\n{}", e.span(), e.message(), e);
        let e = DeTable::parse("a = 1\na = 2\n").unwrap_err();
        println!("{:?} {:?}\n{}", e.span(), e.message(), e);
    }
}
