use clap::Parser;

fn main() -> color_eyre::Result<()> {
    color_eyre::install()?;
    let cli = kongup::cli::Cli::parse();
    let code = kongup::cli::run(cli)?;
    std::process::exit(code);
}
