//! Evaluation on the native engine: every image's prediction, loss and confidence.

use model::Classifier;

use super::net::Net;
use crate::eval::Outputs;
use crate::sparse::SparseRows;
use crate::tensors::Data;

/// Rows per block of a forward pass over a whole set: keeps the activations in cache.
pub(super) const EVAL_BLOCK: usize = 256;

/// Whether each training and test image is classified correctly, and its cross-entropy
/// ([`crate::eval::sample_loss`]), for `model`.
pub(crate) fn outputs(model: &Classifier, data: &Data, confidences: bool) -> Outputs {
    let (train, test) = data.images().sparse();
    let net = Net::from_mlp(model, train.background);
    let mnist = data.images().dataset();
    let run = |x: &SparseRows, labels: &[u8], confidences: Option<&mut Vec<f64>>| {
        let mut acts = Vec::new();
        let (mut ok, mut loss) = (Vec::with_capacity(x.len()), Vec::with_capacity(x.len()));
        let classes = net.classes();
        let rows: Vec<usize> = (0..x.len()).collect();
        let mut confidences = confidences;
        for block in rows.chunks(EVAL_BLOCK) {
            net.forward(x, block, &mut acts, None);
            for (row, &i) in acts.last().expect("a forward pass").chunks_exact(classes).zip(block) {
                let y = usize::from(labels[i]);
                ok.push(argmax(row) == y);
                loss.push(crate::eval::sample_loss(row, y));
                if let Some(c) = confidences.as_deref_mut() {
                    c.push(crate::eval::confidence(row, y));
                }
            }
        }
        (ok, loss)
    };
    // The test set's background must be the training set's for the shared `base`.
    debug_assert_eq!(train.background.to_bits(), test.background.to_bits());
    let mut train_confidence = Vec::new();
    let wanted = confidences.then_some(&mut train_confidence);
    let (train_correct, train_loss) = run(train, &mnist.train.labels, wanted);
    let (test_correct, test_loss) = run(test, &mnist.test.labels, None);
    Outputs { train_correct, test_correct, train_loss, test_loss, train_confidence }
}

/// The first index of the largest value (torch's `argmax`).
pub(super) fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}
