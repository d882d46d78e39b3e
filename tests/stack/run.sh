# run.sh placeholder
